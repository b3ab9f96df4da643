"""PostgreSQL: every rollup table the writer updates in place has no index on a column
its updates change (rollup_sessions: the minute of last_at, not last_at) and room left in
its pages, so an update of a group can be a HOT update (no new index entry). Migration 15
made most of them so, migration 17 rollup_users and rollup_sessions. The listings that
read them keep their order and paging (sessions: also on SQLite, by its last_at index)."""

import os

import pytest

from heliograph.analytics.filters import RequestFilter
from heliograph.store import _rollups
from heliograph.store._schema_v15 import ROLLUP_FILLFACTOR
from heliograph.store._schema_v17 import SESSIONS_MINUTE_INDEX

POSTGRES = pytest.mark.skipif(not os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL"),
                              reason="HELIOGRAPH_TEST_POSTGRES_URL not set")
# Indexed beyond its key: the minute of last_at (the sessions listing walks it).
_ALSO_INDEXED = {"rollup_sessions": {"last_minute"}}
_KEYS = {table.name: set(table.keys) | _ALSO_INDEXED.get(table.name, set())
         for table in _rollups.TABLES}


def _query(store, sql, params=()):
    with store.transaction() as cur:
        return store.execute(cur, sql, params).fetchall()


@POSTGRES
@pytest.mark.parametrize("store_kind", ["postgres"])
@pytest.mark.parametrize("table", sorted(_KEYS))
def test_a_rollup_is_indexed_only_by_what_its_updates_leave_as_it_is(store, table):
    indexed = _query(store, "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                            " WHERE i.indrelid = CAST(? AS regclass)", (table,))
    assert {name for (name,) in indexed} <= _KEYS[table], table
    assert _query(store, "SELECT reloptions FROM pg_class WHERE oid = CAST(? AS regclass)",
                  (table,)) == [([f"fillfactor={ROLLUP_FILLFACTOR}"],)]


def test_users_most_used_first_page_in_order(store, reader, make_record):
    # The index migration 17 drops never served this listing: the users' sums are
    # sorted in an outer query. Pages stay complete and in order without it.
    store.insert_records([make_record(f"r{i}", at=f"2031-05-0{1 + i % 3}T10:00:0{i % 10}Z",
                                      user_id=f"u{i % 7}") for i in range(40)])
    seen, cursor = [], None
    while True:
        page, cursor = reader.users_page("org1", RequestFilter(), sort="requests",
                                         limit=3, cursor=cursor)
        seen += [(u["user_id"], u["requests"]) for u in page]
        if cursor is None:
            break
    expected = sorted(((f"u{k}", sum(1 for i in range(40) if i % 7 == k)) for k in range(7)),
                      key=lambda item: (-item[1], item[0]))
    assert seen == expected


def test_sessions_newest_activity_first_across_minutes_and_ties(store, reader, make_record):
    # Last activity: s1 and s2 in the same minute (s2 later), s3 and s4 at the very same
    # time (ties by session_id, descending), s5 a minute earlier, s6 an hour earlier but
    # started first; s1 moved to its minute by a later step.
    at = {"s1": "10:05:07.5", "s2": "10:05:59", "s3": "10:05:30", "s4": "10:05:30",
          "s5": "10:04:59.999999", "s6": "09:05:00"}
    records = [make_record(f"first-{s}", at="2031-05-01T09:00:00Z", session_id=s)
               for s in at]
    records += [make_record(f"last-{s}", at=f"2031-05-01T{t}Z", session_id=s)
                for s, t in at.items()]
    store.insert_records(records[:6])
    store.insert_records(records[6:])
    expected = ["s2", "s4", "s3", "s1", "s5", "s6"]
    for limit in (1, 2, 4, 10):
        seen, cursor = [], None
        while True:
            page, cursor = reader.sessions("org1", RequestFilter(), limit=limit, cursor=cursor)
            seen += [s["session_id"] for s in page]
            if cursor is None:
                break
        assert seen == expected, limit
    first, _ = reader.sessions("org1", RequestFilter(), limit=1)
    assert first[0]["last_at"] == "2031-05-01T10:05:59Z" and first[0]["requests"] == 2


def _sessions_listing_sql(store, reader, make_record, monkeypatch) -> list[tuple]:
    """The SQL of the sessions listing's first page and of a later one, over 3,000
    sessions (the later page's cursor far from the newest)."""
    store.insert_records([make_record(f"r{i}", at=f"2031-05-01T{i // 600 % 24:02d}:"
                                                  f"{i // 10 % 60:02d}:{i % 60:02d}Z",
                                      session_id=f"s{i}") for i in range(3000)])
    store.update_planner_stats(every_table=True)
    ran = []
    fetchall = reader._fetchall

    def recorded(sql, params):
        ran.append((sql, list(params)))
        return fetchall(sql, params)

    monkeypatch.setattr(reader, "_fetchall", recorded)
    cursor = None
    for _ in range(3):
        page, cursor = reader.sessions("org1", RequestFilter(), limit=50, cursor=cursor)
        assert len(page) == 50 and cursor
    monkeypatch.undo()
    return [ran[0], ran[-1]]


@POSTGRES
@pytest.mark.parametrize("store_kind", ["postgres"])
def test_the_sessions_listing_walks_the_minute_index(store, reader, make_record,
                                                     monkeypatch):
    for sql, params in _sessions_listing_sql(store, reader, make_record, monkeypatch):
        plan = "\n".join(row[0] for row in reader._fetchall("EXPLAIN " + sql, params))
        assert SESSIONS_MINUTE_INDEX in plan and "Seq Scan" not in plan, plan


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_a_later_sessions_page_starts_the_sqlite_index_walk_at_its_cursor(
        store, reader, make_record, monkeypatch):
    # Without a range on last_at the index is searched by organization alone, and a
    # page deep in the list reads every newer session first.
    _, (sql, params) = _sessions_listing_sql(store, reader, make_record, monkeypatch)
    plan = " ".join(row[-1] for row in reader._fetchall("EXPLAIN QUERY PLAN " + sql, params))
    assert "rollup_sessions_recent (organization=? AND last_at<?)" in plan, plan
