"""The SQLite writer's layout (issue #16 item 5): request properties in a WITHOUT ROWID
table (migration 14) with every property filter still read through its index, and the
demo filling the log with time-ordered (UUIDv7) request ids as the gateway makes them."""

import datetime as _dt
import math
import uuid

from heliograph.analytics import open_analytics
from heliograph.analytics.filters import RequestFilter
from heliograph.demo.history import HistoryGenerator
from heliograph.store._schema import REQUEST_COLUMNS
from heliograph.store.sqlite import SQLiteStore


def _table_sql(store, name: str) -> str:
    with store.transaction() as cur:
        return store.execute(cur, "SELECT sql FROM sqlite_master WHERE type = 'table'"
                                  " AND name = ?", (name,)).fetchone()[0]


def _indexes(store, table: str) -> list[str]:
    with store.transaction() as cur:
        return sorted(row[0] for row in store.execute(
            cur, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
            (table,)).fetchall())


def test_properties_move_to_a_without_rowid_table_keeping_every_row(tmp_path, make_record):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = SQLiteStore(url)
    old.migrate(until=13)
    assert "WITHOUT ROWID" not in _table_sql(old, "request_properties")
    old.insert_records([make_record(f"r{i}", properties={"team": f"t{i % 3}", "env": "prod"})
                        for i in range(30)])
    old.migrate()
    assert old.schema_versions()[-1] >= 14
    assert "WITHOUT ROWID" in _table_sql(old, "request_properties")
    # The key is the table: no automatic index beside it, the value index kept.
    assert _indexes(old, "request_properties") == ["request_properties_value"]
    reader = open_analytics(url)
    try:
        assert reader.get_request("org1", "r4")["properties"] == {"team": "t1", "env": "prod"}
        listed, _ = reader.list_requests("org1", RequestFilter(properties={"team": "t2"}), 50)
        assert sorted(r["id"] for r in listed) == sorted(f"r{i}" for i in range(30) if i % 3 == 2)
        # Written after the move too, and a replayed batch stores nothing twice.
        batch = [make_record("new1", properties={"team": "t2"})]
        old.insert_records(batch)
        old.insert_records(batch)
        listed, _ = reader.list_requests("org1", RequestFilter(properties={"team": "t2"}), 50)
        assert "new1" in {r["id"] for r in listed} and len(listed) == 11
        with old.transaction() as cur:
            plan = "\n".join(row[-1] for row in old.execute(
                cur, "EXPLAIN QUERY PLAN SELECT request_id FROM request_properties"
                     " WHERE organization = ? AND name = ? AND value = ?",
                ("org1", "team", "t2")).fetchall())
        assert "request_properties_value" in plan, plan
        # Retention takes a record's properties with it.
        assert old.purge("2099-01-01T00:00:00Z", None, batch=1000) == 31
        with old.transaction() as cur:
            assert old.execute(cur, "SELECT COUNT(*) FROM request_properties"
                               ).fetchone()[0] == 0
    finally:
        reader.close()
        old.close()


def test_the_sqlite_row_binds_missing_values_as_nan_and_keeps_the_rest(make_record):
    rec = make_record("a", model="m", latency_ms=12.5, feedback=True,
                      properties={"k": "v"}, trace={"span": 1})
    row = dict(zip(REQUEST_COLUMNS, SQLiteStore._request_row(rec)))
    assert row["model"] == "m" and row["latency_ms"] == 12.5 and row["feedback"] == 1
    assert math.isnan(row["user_id"]) and math.isnan(row["ttft_ms"])
    assert row["cost_known"] == 0 and row["organization"] == "org1"
    assert row["properties_json"] == '{"k":"v"}' and math.isnan(row["ratelimit_json"])
    assert row["extra_json"] == '{"trace":{"span":1}}'


def test_the_demo_makes_time_ordered_request_ids_from_each_records_time():
    gen = HistoryGenerator(400, days=2, seed=5, until=1_796_000_000.0)
    records = [rec for batch in gen.batches() for rec in batch]
    assert len(records) == 400
    for rec in records:
        parsed = uuid.UUID(rec["id"])
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        millis = int(parsed.hex[:12], 16)
        created = _dt.datetime.fromisoformat(rec["created_at"].replace("Z", "+00:00"))
        assert 0 <= created.timestamp() * 1000 - millis < 1   # the same millisecond
    # In time order, so the id indexes grow at their end.
    ordered = sorted(records, key=lambda r: r["created_at"])
    ids = [r["id"] for r in ordered]
    assert sum(a < b for a, b in zip(ids, ids[1:])) >= 0.99 * (len(ids) - 1)
    # Session ids stay random: a caller's own in the wild.
    sessions = {r["session_id"] for r in records if r["session_id"]}
    assert sessions and all(uuid.UUID(s).version == 4 for s in sessions)
