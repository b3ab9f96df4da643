"""PostgreSQL: the cache-entry and rate-limit rollups of a batch go in one upsert per
table (each column as one array), not one statement per row, and count the same: ints
and floats mixed in a column, a group met again in a later batch, a batch replayed."""

import os

import pytest

from heliograph.store.journal import Journal
from heliograph.store.postgres import PostgresStore
from heliograph.store.writer import SegmentWriter

pytestmark = pytest.mark.skipif(not os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL"),
                                reason="HELIOGRAPH_TEST_POSTGRES_URL not set")


@pytest.fixture
def store_kind():
    return "postgres"


def _hit(make_record, i, latency):
    return make_record(f"h{i}", at=f"2031-03-0{1 + i % 2}T10:0{i % 3}:00Z", cache="hit",
                       cache_entry=f"e{i % 3}", latency_ms=latency,
                       cost_saved_usd=0.5 if i % 2 else 0, model="m", provider="p",
                       attempts=[{"model": "m", "provider": "p", "status": 429}])


def test_a_batchs_cache_entry_rows_go_in_one_upsert_each(store, make_record, monkeypatch):
    per_row = []
    original = PostgresStore.executemany

    def executemany(self, cur, sql, rows):
        per_row.append(sql)
        return original(self, cur, sql, rows)

    monkeypatch.setattr(PostgresStore, "executemany", executemany)
    # Latencies an int in one record, a float in another: one group sums both.
    batch = [_hit(make_record, i, 10 if i % 2 else 2.5) for i in range(12)]
    store.insert_records(batch)
    store.insert_records(batch)   # a replay counts nothing
    store.insert_records([_hit(make_record, i, 1) for i in range(12, 18)])
    assert not [sql for sql in per_row if "rollup_cache_entries" in sql
                or "rollup_ratelimit_hourly" in sql], per_row
    with store.transaction() as cur:
        rows = store.execute(cur, "SELECT bucket, cache_entry, hits, saved_usd, latency_sum,"
                                  " latency_count FROM rollup_cache_entries_daily"
                                  " ORDER BY bucket, cache_entry").fetchall()
        limited = store.execute(cur, "SELECT SUM(attempts_429) FROM rollup_ratelimit_hourly"
                                ).fetchone()[0]
    expected: dict[tuple, list] = {}
    for i in range(18):
        rec = _hit(make_record, i, 1 if i >= 12 else 10 if i % 2 else 2.5)
        row = expected.setdefault((rec["created_at"][:10], rec["cache_entry"]), [0, 0.0, 0.0, 0])
        row[0] += 1
        row[1] += rec["cost_saved_usd"]
        row[2] += rec["latency_ms"]
        row[3] += 1
    assert [(b, e, *values) for (b, e), values in sorted(expected.items())] == \
        [tuple(r) for r in rows]
    assert limited == 18


def test_a_hit_whose_model_is_a_number_is_counted_once_by_its_text(store, make_record,
                                                                    tmp_path):
    # The arrays go in binary, where a text column takes only a str: a batch holding a
    # client's numeric model fails as data (its requests COPY first), and its records go
    # again one by one in text, the hit counted once under "123" and the others as well.
    journal = Journal(tmp_path / "journal")
    for i in range(4):
        journal.append(_hit(make_record, i, 5))
    journal.append(dict(_hit(make_record, 4, 5), model=123))
    journal.close()
    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    with store.transaction() as cur:
        rows = store.execute(cur, "SELECT model, SUM(hits) FROM rollup_cache_entries"
                                  " GROUP BY model ORDER BY model").fetchall()
    assert [tuple(r) for r in rows] == [("123", 1), ("m", 4)]


def test_rows_without_a_histogram_are_staged_without_its_columns():
    # Most of a live batch's rollup rows (user x model, sessions, users) belong to tables
    # without the latency histogram. Staged in one table with the histogram tables' 73
    # columns, each carried ~55 NULLs for the writer to encode and the server to parse,
    # store and scan 14 times (bench/README.md). Each value must still land in its column.
    from heliograph.store import _pg_rollups
    from heliograph.store._rollups import HISTOGRAM_COLUMNS, TABLES

    for table in TABLES:
        row = tuple(f"{table.name}.{column}" for column in table.columns())
        ((staging, rows),) = _pg_rollups.staged([(table, [row], "")])
        assert len(rows) == 1 and len(rows[0]) == 1 + len(staging.columns)
        staged = dict(zip(staging.columns, rows[0][1:]))
        assert {c: v for c, v in staged.items() if v is not None} == dict(
            zip(table.columns(), row)), table.name
        if not table.histogram:
            assert not set(HISTOGRAM_COLUMNS) & set(staging.columns), table.name
            assert len(staging.columns) < 30, (table.name, len(staging.columns))
