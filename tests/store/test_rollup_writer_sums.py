"""The writer's rollup rows (store/_rollup_writer.py, summed in Python from each batch)
against the same tables filled by the migrations' SQL (_rollups.py) from the stored rows,
table by table and row by row, on both stores. The batches are a live gateway's (every
record in one hour, so most groups have many members) with what the sums must skip: no
latency on some members of a group, a session named by only some of its records, records
without a user or session, a NULL model, provider or organization, a property that is
not a string."""

from __future__ import annotations

import datetime as _dt

from heliograph.demo.history import HistoryGenerator
from heliograph.store import open_store
from heliograph.store._rollups import TABLES

UNTIL = _dt.datetime(2024, 6, 10, 12, 34, 56, tzinfo=_dt.UTC).timestamp()
START = _dt.datetime(2024, 6, 10, 11, 0, tzinfo=_dt.UTC)


def live_records(n: int = 900) -> list[dict]:
    generator = HistoryGenerator(n, 1.0, seed=23, until=UNTIL, organization="org1")
    records = [rec for batch in generator.batches(300) for rec in batch]
    for i, rec in enumerate(records):
        # 3 s apart, from 11:00 on: two hours, with two or three batches each.
        rec["created_at"] = (START + _dt.timedelta(seconds=3 * i)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        if i % 7 == 0:
            rec["latency_ms"] = None
        if i % 11 == 0:
            rec["user_id"] = None
        if i % 13 == 0:
            rec["session_id"], rec["session_name"] = "shared-session", None
        if i % 26 == 0:
            rec["session_name"] = f"name {i}"
        if i % 17 == 0:
            rec["model"] = rec["provider"] = None
        if i % 19 == 0:
            rec["properties"] = {"Feature": 3, "feature": "shadowed", "tier": None}
    return records


def table_rows(store, table) -> list[tuple]:
    columns = table.columns()
    with store.transaction() as cur:
        rows = store.execute(cur, f"SELECT {', '.join(columns)} FROM {table.name}"
                                  f" ORDER BY {', '.join(table.keys)}").fetchall()
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


def test_every_rollup_row_the_writer_sums_equals_the_sql_backfill(store_url, store_kind):
    store = open_store(store_url)
    records = live_records()
    for start in range(0, len(records), 300):
        store.insert_records(records[start:start + 300])
    written = {table.name: table_rows(store, table) for table in TABLES}
    assert len(written["rollup_sessions"]) > 1 and len(written["rollup_hourly"]) > 1
    # The same tables made again by migrations 6, 9 and 10 from the stored rows.
    with store.transaction(write=True) as cur:
        for table in TABLES:
            store.execute(cur, f"DROP TABLE {table.name}")
        store.execute(cur, "DELETE FROM schema_migrations WHERE version IN (6, 9, 10)")
    store.close()
    store = open_store(store_url)
    try:
        for table in TABLES:
            assert table_rows(store, table) == written[table.name], table.name
    finally:
        store.close()

