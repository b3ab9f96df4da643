"""The log at scale, on each store: bodies apart and searchable through an index, the
insert hook's exactly-once contract, retention, and the planner's use of the indexes."""

import json

import pytest

from heliograph.analytics.filters import RequestFilter
from heliograph.store._schema import MIGRATIONS, SCHEMA_MIGRATIONS_DDL, PerDialect


def ids(reader, flt, org="org1"):
    found, _ = reader.list_requests(org, flt, limit=1000)
    return sorted(r["id"] for r in found)


def count(store, table):
    with store.transaction() as cur:
        return store.execute(cur, f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# -- the insert hook ------------------------------------------------------------------
def recording(store):
    """The same store, its _after_insert hook noting what each transaction passed it."""
    class Recording(type(store)):
        def _after_insert(self, cur, records, props=None, attempts_json=None):
            seen.append([r["id"] for r in records])

    seen: list[list[str]] = []
    store.__class__ = Recording
    return seen


def test_after_insert_gets_each_record_once_replays_never(store, reader, make_record):
    seen = recording(store)
    first = [make_record(f"r{i}", properties={"p": "v"}, request={"n": i})
             for i in range(3)]
    store.insert_records(first)
    # The journal replays the same batch (a crash after commit), plus one new record.
    store.insert_records(first + [make_record("r3")])
    store.insert_records(first)
    assert seen == [["r0", "r1", "r2"], ["r3"], []]
    assert count(store, "requests") == 4 and count(store, "request_bodies") == 3
    assert count(store, "request_properties") == 3


def test_after_insert_gets_a_collision_under_its_fresh_id(store, reader, make_record):
    seen = recording(store)
    store.insert_records([make_record("same", at="2024-03-04T10:00:00.000000Z")])
    store.insert_records([make_record("same", at="2024-03-04T11:00:00.000000Z"),
                          make_record("same", at="2024-03-04T10:00:00.000000Z"),
                          make_record("other")])
    assert seen[0] == ["same"]
    moved, other = seen[1]
    assert moved != "same" and other == "other"
    assert "already used" in reader.get_request("org1", moved)["error"]


def test_the_same_id_twice_in_one_batch_is_stored_once(store, reader, make_record):
    seen = recording(store)
    rec = make_record("twice", request={"x": 1})
    store.insert_records([rec, dict(rec)])
    assert seen == [["twice"]] and count(store, "requests") == 1


# -- bodies and search ----------------------------------------------------------------
def test_bodies_live_apart_and_come_back_with_one_record(store, reader, make_record):
    store.insert_records([make_record("b1", request={"messages": [{"content": "hi"}]},
                                      response={"text": "there"}),
                          make_record("b2")])
    assert count(store, "request_bodies") == 1  # a record without bodies has no row
    got = reader.get_request("org1", "b1")
    assert got["request"] == {"messages": [{"content": "hi"}]}
    assert got["response"] == {"text": "there"}
    listed, _ = reader.list_requests("org1", RequestFilter())
    assert all(r["request"] is None for r in listed)
    with_bodies, _ = reader.list_requests("org1", RequestFilter(), with_bodies=True)
    assert {r["id"]: r["response"] for r in with_bodies} == {"b1": {"text": "there"},
                                                             "b2": None}


def test_search_runs_behind_the_writer_and_reads_words_not_json_escapes(store, reader, make_record):
    store.insert_records([
        make_record("s1", request={"content": "first line\nsecond\tthird"}),
        make_record("s2", response={"text": "Ünïcode café and \"quoted\" words"}),
        make_record("s3", request={"content": "nothing to see"}, organization="org2"),
    ])
    assert ids(reader, RequestFilter(q="second")) == []  # not indexed yet
    assert store.index_search() == 3
    assert store.index_search() == 0
    assert ids(reader, RequestFilter(q="second")) == ["s1"]  # not "nsecond"
    assert ids(reader, RequestFilter(q="third")) == ["s1"]
    assert ids(reader, RequestFilter(q="third line")) == ["s1"]  # every word, any order
    assert ids(reader, RequestFilter(q="third fourth")) == []
    assert ids(reader, RequestFilter(q="QUOTED")) == ["s2"]
    assert ids(reader, RequestFilter(q="see")) == []  # another organization's
    assert ids(reader, RequestFilter(q="see"), org="org2") == ["s3"]
    assert ids(reader, RequestFilter(q="%%")) == []  # no word: nothing
    assert ids(reader, RequestFilter(q='"')) == []
    assert ids(reader, RequestFilter(q="it's OR 'x' & !y")) == []  # no query syntax


def test_search_index_is_filled_in_batches(store, reader, make_record):
    store.insert_records([make_record(f"n{i}", request={"k": f"word{i % 3}"})
                          for i in range(25)])
    assert [store.index_search(10) for _ in range(4)] == [10, 10, 5, 0]
    assert len(ids(reader, RequestFilter(q="word1"))) == 8


# -- retention ------------------------------------------------------------------------
def test_retention_deletes_old_records_then_old_bodies_in_batches(store, reader, make_record,
                                                                 store_kind):
    old = [make_record(f"old{i}", at=f"2024-01-0{i + 1}T00:00:00.000000Z",
                       organization=f"org{i % 2 + 1}", properties={"p": "v"},
                       request={"text": "ancient words"}) for i in range(5)]
    mid = make_record("mid", at="2024-02-01T00:00:00.000000Z", properties={"p": "v"},
                      request={"text": "middle words"}, response={"r": "x"})
    new = make_record("new", at="2024-03-01T00:00:00.000000Z",
                      request={"text": "recent words"})
    store.insert_records([*old, mid, new])
    store.index_search()
    with store.transaction(write=True) as cur:  # a rollup table (not ours to touch)
        store.execute(cur, "CREATE TABLE rollup_retention_probe (n INTEGER)")
        store.execute(cur, "INSERT INTO rollup_retention_probe VALUES (1)")
    records_before, bodies_before = "2024-01-15T00:00:00Z", "2024-02-15T00:00:00Z"
    steps = []
    while deleted := store.purge(records_before, bodies_before, batch=2):
        assert deleted <= 2 and len(steps) < 20
        steps.append(deleted)
    if store_kind == "sqlite":
        assert steps == [2, 2, 2]  # the last old record and the middle one's body together
    # (PostgreSQL first drops January's bodies as a whole month: the steps differ.)
    assert count(store, "requests") == 2 and count(store, "request_properties") == 1
    assert count(store, "request_bodies") == 1
    assert count(store, "rollup_retention_probe") == 1
    kept = reader.get_request("org1", "mid")
    assert kept["request"] is None and kept["properties"] == {"p": "v"}
    assert ids(reader, RequestFilter(q="words")) == ["new"]
    # The index still works for what comes next (SQLite: its entries were deleted
    # exactly, or later searches would fail).
    store.insert_records([make_record("later", request={"text": "middle words"})])
    store.index_search()
    assert ids(reader, RequestFilter(q="middle words")) == ["later"]


def test_retention_without_cutoffs_deletes_nothing(store, make_record):
    store.insert_records([make_record("keep", request={"a": 1})])
    assert store.purge(None, None) == 0 and count(store, "requests") == 1


# -- migration 5 ------------------------------------------------------------------------
def test_migration_5_moves_bodies_out_and_indexes_them(store_kind, store_url):
    from heliograph.store import open_store
    if store_kind == "sqlite":
        from heliograph.store.sqlite import SQLiteStore as Kind
    else:
        from heliograph.store.postgres import PostgresStore as Kind
    old = Kind(store_url)
    with old.transaction(write=True) as cur:  # the schema as version 4 left it
        old.execute(cur, SCHEMA_MIGRATIONS_DDL)
        for version, description, statements in MIGRATIONS[:4]:
            for statement in statements:
                assert not isinstance(statement, PerDialect)
                old.execute(cur, statement.format(**old.dialect.types))
            old.execute(cur, "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (version, description, "2024-01-01T00:00:00Z"))
        old.execute(cur, "INSERT INTO requests (id, created_at, organization, cost_known,"
                         " request_body, response_body) VALUES (?, ?, ?, ?, ?, ?)",
                    ("v4", "2024-01-01T00:00:00.000000Z", "org1", False,
                     json.dumps({"text": "kept through migration"}), None))
    old.close()
    store = open_store(store_url)
    try:
        assert store.schema_versions()[:5] == [1, 2, 3, 4, 5]
        store.index_search()
        from heliograph.analytics import open_analytics
        reader = open_analytics(store_url)
        try:
            assert reader.get_request("org1", "v4")["request"] == {
                "text": "kept through migration"}
            assert ids(reader, RequestFilter(q="through migration")) == ["v4"]
        finally:
            reader.close()
    finally:
        store.close()


# -- the planner's choices --------------------------------------------------------------
@pytest.fixture
def planned(store, reader, migrated_url, make_record):
    """3,000 records where each filter's value is rare, and fresh planner statistics."""
    records = []
    for i in range(3000):
        rare = i % 1000 == 7
        records.append(make_record(
            f"p{i:05d}", at=f"2024-03-{1 + i % 28:02d}T00:00:{i % 60:02d}.{i:06d}Z",
            model=f"m{i % 5}", user_id="rare-user" if rare else f"u{i % 7}",
            session_id="rare-session" if rare else None, status=503 if rare else 200,
            cache="hit" if rare else None,
            properties={"feature": "rare" if rare else f"f{i % 3}"},
            request={"text": "needle" if rare else "hay"}))
    store.insert_records(records)
    store.index_search()
    store.update_planner_stats()
    if store.dialect.name == "postgres":  # what autovacuum would have done by now
        import psycopg
        with psycopg.connect(migrated_url, autocommit=True) as conn:
            for table in ("requests", "request_properties", "request_bodies",
                          "request_words"):
                conn.execute(f"VACUUM ANALYZE {table}")
    return store


def plan(store, reader, flt):
    from heliograph.analytics._where import compile_filter
    where, params = compile_filter("org1", flt, store.dialect.like_ci)
    sql = (f"SELECT r.id FROM requests r WHERE {where}"
           " ORDER BY r.created_at DESC, r.id DESC LIMIT 50")
    with store.transaction() as cur:
        if store.dialect.name == "sqlite":
            rows = store.execute(cur, "EXPLAIN QUERY PLAN " + sql, params).fetchall()
            return "\n".join(row[-1] for row in rows)
        rows = store.execute(cur, "EXPLAIN " + sql, params).fetchall()
        return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("flt, index", [
    (RequestFilter(user_id="rare-user"), "requests_org_user"),
    (RequestFilter(session_id="rare-session"), "requests_org_session"),
    (RequestFilter(status=503), "requests_org_status"),
    (RequestFilter(cache="hit"), "requests_org_cache"),
    (RequestFilter(properties={"feature": "rare"}), "request_properties_value"),
    (RequestFilter(since="2024-03-27T00:00:00Z"), "requests_org_created"),
    (RequestFilter(), "requests_org_created"),
])
def test_the_planner_reads_each_filter_through_its_index(planned, reader, flt, index):
    text = plan(planned, reader, flt)
    assert index in text, text
    # (A month's partition the planner knows to be empty costs nothing to scan.)
    assert not [line for line in text.splitlines() if "Seq Scan on requests" in line
                and "(cost=0.00..0.00 " not in line], text
    assert "SCAN r\n" not in text + "\n", text


def test_a_search_reads_the_text_index(planned, reader):
    text = plan(planned, reader, RequestFilter(q="needle"))
    expected = "request_search" if planned.dialect.name == "sqlite" else \
        "request_words_search"
    assert expected in text, text
    assert ids(reader, RequestFilter(q="needle")) == sorted(
        f"p{i:05d}" for i in range(3000) if i % 1000 == 7)


def test_a_common_word_pages_like_a_rare_one(store, reader, make_record):
    # Past search.COMMON_MATCHES matches a listing checks records one by one, newest
    # first; the pages must hold the same records either way.
    from heliograph.store.search import COMMON_MATCHES
    total = COMMON_MATCHES + 30
    store.insert_records([make_record(
        f"c{i:05d}", at=f"2024-03-04T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z",
        request={"text": "common" + (" rare" if i % 500 == 0 else "")},
        organization="org1" if i % 10 else "org2") for i in range(total)])
    store.index_search(total)
    expected = sorted(f"c{i:05d}" for i in range(total) if i % 10)
    for q in ("common", "rare common"):
        seen, cursor = [], None
        while True:
            page, cursor = reader.list_requests("org1", RequestFilter(q=q), 700, cursor)
            seen += [r["id"] for r in page]
            if not cursor:
                break
        want = expected if q == "common" else [
            f"c{i:05d}" for i in range(total) if i % 10 and i % 500 == 0]
        assert seen == sorted(want, reverse=True), q
