"""Migration 19 (store/_schema_v19.py): on SQLite the user and model tables are rebuilt
WITHOUT ROWID, the status index leaves the 200s out and rollup_users_recent goes. An
upgraded log answers as it did (on both stores, all time and windows that read the
hourly and daily tables, listings by status), later records count as the raw rows say,
and a status filter that excludes 200 still reads the status index on SQLite.
"""

from __future__ import annotations

import pytest
from test_store_rollups import close, demo_records

from heliograph.analytics import open_analytics
from heliograph.analytics.conditions import condition
from heliograph.analytics.filters import RequestFilter
from heliograph.store.postgres import PostgresStore
from heliograph.store.sqlite import SQLiteStore

ALL_TIME = RequestFilter()
# Whole days and hours, and minutes at either edge: every user and model table answers.
WINDOW = RequestFilter(since="2024-06-08T09:17:03.000000Z",
                       until="2024-06-10T07:40:00.000000Z")
BY_STATUS = (RequestFilter(status=200), RequestFilter(status=429),
             RequestFilter(conditions=[condition("status", "gte", 400)]))


def _listed(reader, flt: RequestFilter) -> list[str]:
    seen, cursor = [], None
    while True:
        page, cursor = reader.list_requests("org1", flt, 200, cursor)
        seen += [r["id"] for r in page]
        if not cursor:
            return seen


def _all_time_table(store) -> dict[str, dict[str, tuple]]:
    """{user: {model: (requests, errors, cost)}} as the all-time table holds them: what the
    Users page shows over all time."""
    found: dict[str, dict[str, tuple]] = {}
    with store.transaction() as cur:
        for user, model, requests, errors, cost in store.execute(
                cur, "SELECT user_id, model, requests, errors, cost_usd FROM rollup_user_models"
                     " WHERE organization = ?", ("org1",)).fetchall():
            found.setdefault(user, {})[model or None] = (requests, errors, float(cost))
    return found


def _has_index(store, name: str) -> bool:
    sql = ("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
           if store.dialect.name == "sqlite" else
           "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()"
           " AND indexname = ?")
    with store.transaction() as cur:
        return store.execute(cur, sql, (name,)).fetchone()[0] == 1


def _table_sql(store, name: str) -> str:
    with store.transaction() as cur:
        return store.execute(cur, "SELECT sql FROM sqlite_master WHERE name = ?",
                             (name,)).fetchone()[0]


def test_an_upgraded_log_shows_every_users_models_as_before(store_url, store_kind):
    # A log at version 18.
    store = (SQLiteStore if store_kind == "sqlite" else PostgresStore)(store_url)
    store.migrate(until=18)
    records = demo_records(1200, days=25.0)
    for start in range(0, len(records), 400):
        store.insert_records(records[start:start + 400])
    store.insert_records(demo_records(200, organization="org2"))
    before = _all_time_table(store)
    assert len(before) > 10 and any(len(models) > 1 for models in before.values())
    assert _has_index(store, "rollup_users_recent") == (store_kind == "sqlite")
    store.update_planner_stats()
    rolled = open_analytics(store_url)
    in_window = rolled.users("org1", WINDOW)
    listings = [_listed(rolled, flt) for flt in BY_STATUS]
    assert all(listings)
    rolled.close()

    store.migrate()
    rolled, raw = open_analytics(store_url), open_analytics(store_url)
    raw.use_rollups = False
    try:
        assert 19 in store.schema_versions()
        assert _all_time_table(store) == before
        assert not _has_index(store, "rollup_users_recent")
        if store_kind == "sqlite":
            for table in ("rollup_user_model_hourly", "rollup_user_model_daily"):
                assert _table_sql(store, table).endswith("WITHOUT ROWID")
            assert _table_sql(store, "requests_org_status").endswith("WHERE status <> 200")
            with store.transaction() as cur:   # its planner statistics made anew
                assert store.execute(cur, "SELECT COUNT(*) FROM sqlite_stat1"
                                          " WHERE idx = 'requests_org_status'").fetchone()[0]
        users = rolled.users("org1", ALL_TIME)
        assert {u["user_id"]: u["models"] for u in users} == {
            user: {model: n for model, (n, _e, _c) in models.items()}
            for user, models in before.items()}
        for user in sorted(before, key=lambda u: -sum(n for n, *_ in before[u].values()))[:5]:
            got = rolled.user_models("org1", RequestFilter(user_id=user))
            want = before[user]
            assert [g["key"] for g in got] == sorted(
                want, key=lambda m: (-want[m][0], m is None, m or ""))
            assert close([(g["requests"], g["errors"], g["cost_usd"]) for g in got],
                         [want[g["key"]] for g in got])
        assert in_window and close(rolled.users("org1", WINDOW), in_window)
        assert [_listed(rolled, flt) for flt in BY_STATUS] == listings
        # Records written after the upgrade count like the raw rows say.
        store.insert_records(demo_records(300, days=1.0, seed=17))
        for flt in (ALL_TIME, WINDOW):
            assert close(rolled.users("org1", flt), raw.users("org1", flt))
    finally:
        rolled.close()
        raw.close()
        store.close()


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
@pytest.mark.parametrize("flt", [
    RequestFilter(status=503),
    RequestFilter(conditions=[condition("status", "gte", 500)]),
    RequestFilter(conditions=[condition("status", "lt", 200)]),
], ids=["503", "gte 500", "lt 200"])
def test_a_status_filter_without_200_reads_sqlites_partial_status_index(store, make_record,
                                                                       flt):
    from heliograph.analytics._where import compile_filter

    store.insert_records([make_record(f"s{i:05d}", at=f"2031-01-{1 + i % 28:02d}T00:00:00"
                                      f".{i:06d}Z", status=503 if i % 1000 == 7 else 200)
                          for i in range(3000)])
    store.update_planner_stats()
    where, params = compile_filter("org1", flt, store.dialect.like_ci)
    with store.transaction() as cur:
        text = "\n".join(row[-1] for row in store.execute(
            cur, "EXPLAIN QUERY PLAN SELECT r.id FROM requests r WHERE " + where
                 + " ORDER BY r.created_at DESC, r.id DESC LIMIT 50", params).fetchall())
    assert "USING INDEX requests_org_status (" in text or \
        "USING COVERING INDEX requests_org_status (" in text, text
