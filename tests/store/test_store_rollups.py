"""Rollups (issue #16) against the raw rows they summarise, on both stores: every group_by,
each filter a rollup answers, windows cut mid-hour and mid-day (so answers mix daily,
hourly and raw pieces), a journal replay, and the migration's backfill.

The reference is the same reader with rollups switched off (SQL over the raw rows), and
for the plain counts a sum in Python over the records themselves.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
from collections import Counter

import pytest

from heliograph.analytics import _grouped, open_analytics
from heliograph.analytics._grouped import window_total
from heliograph.analytics.filters import RequestFilter
from heliograph.demo.history import HistoryGenerator
from heliograph.store import open_store
from heliograph.store._rollups import HISTOGRAM_COLUMNS

approx = pytest.approx
UNTIL = _dt.datetime(2024, 6, 10, 12, 34, 56, tzinfo=_dt.UTC).timestamp()


def demo_records(n: int = 1500, days: float = 3.0, organization: str = "org1",
                 seed: int = 16) -> list[dict]:
    generator = HistoryGenerator(n, days, seed=seed, until=UNTIL, organization=organization)
    return [rec for batch in generator.batches(500) for rec in batch]


@pytest.fixture
def demo_set(store):
    records = demo_records()
    for start in range(0, len(records), 400):   # several batches, as the writer does
        store.insert_records(records[start:start + 400])
    store.insert_records(demo_records(200, organization="org2"))   # never counted in org1
    return records


GROUP_BYS = ["model", "provider", "user_id", "session_id", "property.feature",
             "property.Workflow", "hour", "day", "week", "month"]
WINDOWS = [
    (None, None),
    ("2024-06-08T09:17:03.000000Z", None),                          # mid-hour, open end
    (None, "2024-06-09T16:40:00.000000Z"),
    ("2024-06-07T23:59:59.999999Z", "2024-06-10T00:00:00.000001Z"),  # days ± a µs
    ("2024-06-09T10:05:00.000000Z", "2024-06-09T10:55:00.000000Z"),  # inside one hour
    ("2024-06-09T00:00:00.000000Z", "2024-06-10T00:00:00.000000Z"),  # exactly one day
]
# Each window with each filter would be 48 queries per group_by and store; every window
# with no filter and every filter over two windows cover the same paths.
CASES = ([(window, 0) for window in WINDOWS]
         + [(window, i) for window in WINDOWS[1:4:2] for i in range(1, 8)])


def filters(records: list[dict]) -> list[dict]:
    top_user = Counter(r["user_id"] for r in records if r["user_id"]).most_common(1)[0][0]
    return [{}, {"model": "gpt-4o-mini"}, {"status": 200}, {"cache": "hit"},
            {"provider": "openai", "status": 200}, {"properties": {"feature": "search"}},
            {"user_id": top_user}, {"properties": {"workflow": "research-agent"}}]


def close(got, want) -> bool:
    """Equal, floats to rounding (the two paths add costs in a different order)."""
    if isinstance(want, float) and isinstance(got, float):
        return got == approx(want, rel=1e-9, abs=1e-12)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
    if isinstance(want, list | tuple) and isinstance(got, list | tuple):
        return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))
    return got == want


def same_group(got: dict, want: dict, approximate_percentiles: bool) -> None:
    for key in ("requests", "errors", "cache_hits", "prompt_tokens", "completion_tokens",
                "total_tokens", "unpriced_requests"):
        assert got[key] == want[key], key
    for key in ("cost_usd", "cost_saved_usd", "error_rate", "avg_latency_ms"):
        assert got[key] == approx(want[key], rel=1e-9, abs=1e-12), key
    for key in ("p50_latency_ms", "p95_latency_ms"):
        if want[key] is None or not approximate_percentiles:
            assert got[key] == approx(want[key], rel=1e-9), key
        else:  # a group counted as total − the others: same bin, extremes unknown
            assert want[key] / math.sqrt(2) <= got[key] <= want[key] * math.sqrt(2), key


@pytest.mark.parametrize("group_by", GROUP_BYS)
def test_metrics_from_rollups_equal_raw_rows(store, demo_set, reader, raw_reader, group_by):
    all_filters = filters(demo_set)
    for (since, until), which in CASES:
        fields = all_filters[which]
        flt = RequestFilter(since=since, until=until, **fields)
        got = reader.metrics("org1", flt, group_by)
        want = raw_reader.metrics("org1", flt, group_by)
        where = f"{group_by} {since}..{until} {fields}"
        assert [g["key"] for g in got["data"]] == [g["key"] for g in want["data"]], where
        for g, w in zip(got["data"], want["data"]):
            same_group(g, w, approximate_percentiles=g["key"] is None)
        same_group(got["total"], want["total"], approximate_percentiles=False)


def test_rollups_count_what_the_records_say(store, demo_set, reader):
    by_model = {g["key"]: g for g in reader.metrics("org1", RequestFilter(), "model")["data"]}
    assert {k: g["requests"] for k, g in by_model.items()} == Counter(
        r["model"] for r in demo_set)
    cost = {m: 0.0 for m in by_model}
    for r in demo_set:
        if r["cost_known"] and r["cost_usd"] is not None:
            cost[r["model"]] += r["cost_usd"]
    assert {k: g["cost_usd"] for k, g in by_model.items()} == approx(cost)
    errors = sum(1 for r in demo_set if r["status"] >= 400)
    hits = sum(1 for r in demo_set if r["cache"] == "hit")
    total = reader.metrics("org1", RequestFilter(), "day")["total"]
    assert (total["requests"], total["errors"], total["cache_hits"]) == (
        len(demo_set), errors, hits)
    latencies = sorted(r["latency_ms"] for r in demo_set if r["latency_ms"] is not None)
    exact_p95 = latencies[math.ceil(0.95 * len(latencies)) - 1]
    assert exact_p95 / math.sqrt(2) <= total["p95_latency_ms"] <= exact_p95 * math.sqrt(2)


def test_users_sessions_properties_equal_raw_rows(store, demo_set, reader, raw_reader):
    assert close(reader.users("org1", RequestFilter()), raw_reader.users("org1", RequestFilter()))
    top = reader.users("org1", RequestFilter())[0]
    assert reader.user("org1", top["user_id"]) == top
    assert top["requests"] == sum(1 for r in demo_set if r["user_id"] == top["user_id"])

    got, cursor = reader.sessions("org1", RequestFilter(), limit=7)
    want, want_cursor = raw_reader.sessions("org1", RequestFilter(), limit=7)
    assert close(got, want) and cursor == want_cursor
    assert close(reader.sessions("org1", RequestFilter(), limit=7, cursor=cursor),
                 raw_reader.sessions("org1", RequestFilter(), limit=7, cursor=cursor))
    pages = got
    while cursor:
        page, cursor = reader.sessions("org1", RequestFilter(), limit=50, cursor=cursor)
        pages += page
    assert len(pages) == len({r["session_id"] for r in demo_set if r["session_id"]})
    assert [(p["last_at"], p["session_id"]) for p in pages] == sorted(
        ((p["last_at"], p["session_id"]) for p in pages), reverse=True)

    for flt in (RequestFilter(), RequestFilter(since="2024-06-09T03:30:00.000000Z")):
        assert close(reader.properties("org1", flt, None, 100),
                     raw_reader.properties("org1", flt, None, 100))
    feature = reader.properties("org1", RequestFilter(), "Feature", 2)["data"]
    assert [p["name"] for p in feature] == ["feature"] and len(feature[0]["values"]) == 2
    assert feature[0]["requests"] == sum(1 for r in demo_set if "feature" in r["properties"])


def snapshot(reader) -> tuple:
    everything = RequestFilter()
    return (reader.metrics("org1", everything, "hour"),
            reader.metrics("org1", everything, "property.workflow"),
            reader.metrics("org1", everything, "user_id"),
            reader.users("org1", everything), reader.sessions("org1", everything, 1000),
            reader.properties("org1", everything))


def test_a_replayed_batch_is_not_counted_twice(store, reader):
    records = demo_records(300)
    store.insert_records(records)
    before = snapshot(reader)
    assert before[0]["total"]["requests"] == 300
    store.insert_records(records)                          # the journal replayed whole
    assert snapshot(reader) == before
    fresh = demo_records(40, seed=17)
    store.insert_records(records[:50] + fresh)             # part replay, part new
    after = snapshot(reader)
    assert after[0]["total"]["requests"] == 340
    assert after[3] == reader.users("org1", RequestFilter())
    raw = sum(u["requests"] for u in after[3])
    assert raw == sum(1 for r in records + fresh if r["user_id"])


def test_migration_backfills_rows_stored_before_it(store_url, store_kind):
    store = open_store(store_url)
    records = demo_records(400)
    store.insert_records(records)
    expected = open_analytics(store_url)
    want = expected.metrics("org1", RequestFilter(), "property.feature")
    expected.close()
    # The database as it was before version 6: no rollup tables, their rows unrecorded.
    with store.transaction(write=True) as cur:
        tables = [name for (name,) in store.execute(
            cur, "SELECT name FROM sqlite_master WHERE type = 'table'" if store_kind ==
            "sqlite" else "SELECT tablename FROM pg_tables"
            " WHERE schemaname = current_schema()").fetchall() if name.startswith("rollup_")]
        for table in tables:
            store.execute(cur, f"DROP TABLE {table}")
        store.execute(cur, "DELETE FROM schema_migrations WHERE version IN (6, 9, 10)")
    store.close()
    store = open_store(store_url)   # migrates: versions 6, 9 and 10 again, backfilling
    assert {6, 9, 10} <= set(store.schema_versions())
    backfilled = open_analytics(store_url)
    try:
        assert close(backfilled.metrics("org1", RequestFilter(), "property.feature"), want)
        assert backfilled.metrics("org1", RequestFilter(), "model")["total"]["requests"] == 400
    finally:
        backfilled.close()
        store.close()


def test_migration_9_backfills_hours_per_user(store_url, store_kind):
    """A log written before the hourly per-user table: migration 9 fills it from the raw
    rows, and a window cut mid-day then mid-hour (whose edges it answers) equals raw."""
    store = open_store(store_url)
    records = demo_records(600)
    store.insert_records(records)
    with store.transaction(write=True) as cur:
        store.execute(cur, "DROP TABLE rollup_user_hourly")
        store.execute(cur, "DELETE FROM schema_migrations WHERE version = 9")
    store.close()
    store = open_store(store_url)
    assert 9 in store.schema_versions()
    rolled, raw = open_analytics(store_url), open_analytics(store_url)
    raw.use_rollups = False
    window = RequestFilter(since="2024-06-08T09:17:03.000000Z",
                           until="2024-06-10T07:40:00.000000Z")
    top_user = Counter(r["user_id"] for r in records if r["user_id"]).most_common(1)[0][0]
    try:
        with store.transaction() as cur:
            hours = store.execute(cur, "SELECT COUNT(*), SUM(requests) FROM"
                                       " rollup_user_hourly").fetchone()
        assert hours[0] > 0 and hours[1] == sum(1 for r in records if r["user_id"])
        for flt in (window, RequestFilter(since=window.since, until=window.until,
                                          user_id=top_user)):
            for group_by in ("user_id", "hour", "day"):
                got, want = rolled.metrics("org1", flt, group_by), raw.metrics("org1", flt,
                                                                              group_by)
                assert want["total"]["requests"] > 0
                assert [g["key"] for g in got["data"]] == [g["key"] for g in want["data"]]
                for g, w in zip(got["data"], want["data"]):
                    # The group without a user is the total less the others: its
                    # latency extremes are unknown (as in the test above).
                    same_group(g, w, approximate_percentiles=g["key"] is None)
                same_group(got["total"], want["total"], approximate_percentiles=False)
    finally:
        rolled.close()
        raw.close()
        store.close()


# -- users: sorted and paged by the database ---------------------------------------------
# Each sort's value in a user summary; a missing average latency sorts lowest.
SORT_VALUES = {
    "requests": lambda u: u["requests"], "cost_usd": lambda u: u["cost_usd"],
    "avg_latency_ms": lambda u: -1 if u["avg_latency_ms"] is None else u["avg_latency_ms"],
    "error_rate": lambda u: u["error_rate"], "last_seen": lambda u: u["last_seen"],
    "first_seen": lambda u: u["first_seen"], "user_id": lambda u: u["user_id"],
}


def every_page(reader, flt: RequestFilter, sort: str, order: str, limit: int) -> list[dict]:
    found, cursor = reader.users_page("org1", flt, sort, order, limit)
    assert len(found) <= limit
    while cursor:
        more, cursor = reader.users_page("org1", flt, sort, order, limit, cursor)
        assert more and len(more) <= limit
        found += more
    return found


def expected_order(users: list[dict], sort: str, order: str) -> list[dict]:
    """Python's order of the raw rows' users: by the sort value, ties by user_id."""
    by_id = sorted(users, key=lambda u: u["user_id"])
    if sort == "user_id":
        return by_id[::-1] if order == "desc" else by_id
    return sorted(by_id, key=SORT_VALUES[sort], reverse=order == "desc")


@pytest.mark.parametrize("sort", list(SORT_VALUES))
def test_user_pages_from_rollups_equal_raw_rows(store, demo_set, reader, raw_reader, sort):
    top_user = Counter(r["user_id"] for r in demo_set if r["user_id"]).most_common(1)[0][0]
    for (since, until), fields in [*((w, {}) for w in WINDOWS),
                                   (WINDOWS[1], {"user_id": top_user}),
                                   (WINDOWS[3], {"model": "gpt-4o-mini"})]:
        flt = RequestFilter(since=since, until=until, **fields)
        everyone = raw_reader.users("org1", flt)
        assert everyone, (since, until, fields)
        for order in ("asc", "desc"):
            got = every_page(reader, flt, sort, order, 7)
            assert close(got, expected_order(everyone, sort, order)), (since, until, order)
    # Models per user for a window: from the per user and model rollups, as the raw rows.
    flt = RequestFilter(since=WINDOWS[1][0])
    assert close(reader.users("org1", flt), raw_reader.users("org1", flt))
    assert any(len(u["models"]) > 1 for u in reader.users("org1", flt))


def test_user_pages_refuse_another_sorts_cursor(store, demo_set, reader):
    _page, cursor = reader.users_page("org1", RequestFilter(), "requests", None, 3)
    assert cursor
    for sort, order in (("cost_usd", None), ("requests", "asc")):
        with pytest.raises(ValueError, match="invalid cursor"):
            reader.users_page("org1", RequestFilter(), sort, order, 3, cursor)
    for sort, order in (("nonsense", None), ("requests", "up")):
        with pytest.raises(ValueError):
            reader.users_page("org1", RequestFilter(), sort, order, 3)


def test_cost_by_user_and_a_users_models_equal_raw_rows(store, demo_set, reader, raw_reader):
    top_user = Counter(r["user_id"] for r in demo_set if r["user_id"]).most_common(1)[0][0]
    assert any(r["user_id"] is None for r in demo_set)   # so the null group is there
    for (since, until), fields in [*((w, {}) for w in WINDOWS),
                                   (WINDOWS[1], {"model": "gpt-4o-mini"})]:
        flt = RequestFilter(since=since, until=until, **fields)
        groups = raw_reader.metrics("org1", flt, "user_id")["data"]
        want = sorted(groups, key=lambda g: -g["cost_usd"])[:5]
        got = reader.cost_by_user("org1", flt, 5)
        assert [(g["key"], g["requests"]) for g in got] == [
            (w["key"], w["requests"]) for w in want], (since, until, fields)
        assert [g["cost_usd"] for g in got] == approx([w["cost_usd"] for w in want],
                                                       rel=1e-9, abs=1e-12)
        one = RequestFilter(since=since, until=until, user_id=top_user, **fields)
        by_model = raw_reader.metrics("org1", one, "model")["data"]
        assert close(reader.user_models("org1", one),
                     [{k: g[k] for k in ("key", "requests", "errors", "error_rate",
                                         "cost_usd")} for g in by_model]), (since, until)


def test_migration_10_backfills_users_by_model(store_url, store_kind):
    """A log written before the per user and model (and dekad) tables: migration 10 fills
    them from the raw rows, and a window's users then equal the raw rows'."""
    store = open_store(store_url)
    records = demo_records(600, days=25.0)   # 2024-05-16 to 2024-06-10: dekads
    store.insert_records(records)
    with store.transaction(write=True) as cur:
        store.execute(cur, "DROP TABLE rollup_user_model_hourly")
        store.execute(cur, "DROP TABLE rollup_user_model_daily")
        store.execute(cur, "DROP TABLE rollup_user_dekad")
        store.execute(cur, "DELETE FROM schema_migrations WHERE version = 10")
    store.close()
    store = open_store(store_url)
    assert 10 in store.schema_versions()
    rolled, raw = open_analytics(store_url), open_analytics(store_url)
    raw.use_rollups = False
    try:
        window = RequestFilter(since="2024-06-08T09:17:03.000000Z",
                               until="2024-06-10T07:40:00.000000Z")
        got = rolled.users("org1", window)
        assert got and close(got, raw.users("org1", window))
        for since, until in ((None, None),   # the dekad table alone, then dekads edged
                             ("2024-05-11T00:00:00.000000Z", "2024-05-21T00:00:00.000000Z"),
                             (None, "2024-06-11T00:00:00.000000Z")):
            flt = RequestFilter(since=since, until=until)
            got, want = (rolled.metrics("org1", flt, "user_id")["data"],
                         raw.metrics("org1", flt, "user_id")["data"])
            assert [g["key"] for g in got] == [w["key"] for w in want]
            for g, w in zip(got, want):
                same_group(g, w, approximate_percentiles=g["key"] is None)
        with store.transaction() as cur:
            for table in ("rollup_user_model_hourly", "rollup_user_model_daily",
                          "rollup_user_dekad"):
                assert store.execute(cur, f"SELECT SUM(requests) FROM {table}").fetchone()[0] \
                    == sum(1 for r in records if r["user_id"])
    finally:
        rolled.close()
        raw.close()
        store.close()


def test_users_over_weeks_sum_dekads_days_and_hours(store, reader, raw_reader):
    """Windows of weeks: per-user answers mix thirds of a month (rollup_user_dekad), days,
    hours and raw minutes, and equal the raw rows'."""
    records = demo_records(1200, days=25.0)   # 2024-05-16 to 2024-06-10
    for start in range(0, len(records), 400):
        store.insert_records(records[start:start + 400])
    windows = [("2024-05-18T07:12:00.000000Z", None),                 # dekads to the end
               ("2024-05-20T00:00:00.000000Z", "2024-06-05T13:00:00.000000Z"),
               (None, "2024-06-01T00:00:00.000000Z"),                 # ends on a dekad
               ("2024-05-21T00:00:00.000000Z", "2024-05-31T00:00:00.000000Z"),
               ("2024-05-11T00:00:00.000000Z", "2024-05-21T00:00:00.000000Z"),  # a dekad
               (None, "2024-06-11T00:00:00.000000Z"),                 # the 10th in it
               (None, None)]
    for since, until in windows:
        flt = RequestFilter(since=since, until=until)
        got, want = reader.metrics("org1", flt, "user_id"), raw_reader.metrics("org1", flt,
                                                                              "user_id")
        assert [g["key"] for g in got["data"]] == [g["key"] for g in want["data"]]
        for g, w in zip(got["data"], want["data"]):
            same_group(g, w, approximate_percentiles=g["key"] is None)
        everyone = raw_reader.users("org1", flt)
        for sort in ("requests", "cost_usd", "first_seen"):
            assert close(every_page(reader, flt, sort, "desc", 9),
                         expected_order(everyone, sort, "desc")), (since, until, sort)
    with store.transaction() as cur:
        dekads = store.execute(cur, "SELECT COUNT(DISTINCT bucket), SUM(requests)"
                                    " FROM rollup_user_dekad").fetchone()
    assert dekads[0] >= 3 and dekads[1] == sum(1 for r in records if r["user_id"])


def same_users(reader, raw_reader, flt: RequestFilter) -> dict:
    """Metrics by user_id from the rollups equal the raw rows' for every user (the
    no-user group's percentiles only approximately: it is merged from other rows); the
    rollups' answer, with the raw rows' total as raw_total."""
    got, want = (reader.metrics("org1", flt, "user_id"),
                 raw_reader.metrics("org1", flt, "user_id"))
    assert [g["key"] for g in got["data"]] == [g["key"] for g in want["data"]]
    for g, w in zip(got["data"], want["data"]):
        same_group(g, w, approximate_percentiles=g["key"] is None)
    return {**got, "raw_total": want["total"]}


def test_users_summed_in_halves_with_only_the_columns_needed(store, reader, raw_reader,
                                                             monkeypatch):
    """Metrics by user_id past SPLIT_USERS (here every organization): the users below
    the middle user_id and the rest summed at once on two connections, reading only the
    rollup columns the window's total has counts in. Still the raw rows' answer, every
    user in exactly one half."""
    monkeypatch.setattr(_grouped, "SPLIT_USERS", 2)
    records = demo_records(1200, days=25.0)   # 2024-05-16 to 2024-06-10
    for start in range(0, len(records), 400):
        store.insert_records(records[start:start + 400])
    windows = [("2024-05-18T07:12:00.000000Z", None),
               ("2024-05-20T00:00:00.000000Z", "2024-06-05T13:00:00.000000Z"),
               ("2024-06-09T10:05:00.000000Z", "2024-06-09T10:55:00.000000Z"),
               (None, None)]
    for since, until in windows:
        got = same_users(reader, raw_reader, RequestFilter(since=since, until=until))
        same_group(got["total"], got["raw_total"], approximate_percentiles=False)
    # The second half ran on the part thread (made on its first use).
    assert any(t.name.startswith("heliograph-part") for t in threading.enumerate())
    # And the bins no record fell in were not read.
    total = reader.metrics("org1", RequestFilter(), "model")["total"]
    assert total["requests"] == len(records)
    shown = window_total(reader, "org1", RequestFilter()).shown_columns()
    assert 0 < sum(c.startswith("lat_") for c in shown) < len(HISTOGRAM_COLUMNS)
    assert "cached_tokens" not in shown and "requests" in shown


def test_users_latency_bins_packed_and_a_field_overflowing(store, store_kind, reader,
                                                            raw_reader, monkeypatch):
    """On SQLite the per-user sums add a user's latency bins packed several to an integer
    (analytics/_packed.py), fields as wide as the window's counts. Fields made too narrow
    (as if the window's counts had grown since they were read) overflow: that is seen and
    the plain columns are summed instead, so the answer is still the raw rows'."""
    from heliograph.analytics import _metrics, _packed

    records = demo_records(1200, days=25.0)
    store.insert_records(records)
    checks: list[bool] = []

    class Recorded(_packed.Packing):
        def check(self, values):
            checks.append(super().check(values))
            return checks[-1]

    class TooNarrow(Recorded):   # every field 2 bits wide: counts of 4 overflow
        def __init__(self, columns, total):
            super().__init__(columns, _grouped.Totals())

    for packing in (Recorded, TooNarrow):
        monkeypatch.setattr(_metrics, "Packing", packing)
        checks.clear()
        for since, until in [("2024-05-18T07:12:00.000000Z", None), (None, None)]:
            same_users(reader, raw_reader, RequestFilter(since=since, until=until))
        if store_kind == "postgres":   # packed on SQLite only
            assert not checks
        elif packing is TooNarrow:     # overflowed, seen, summed again
            assert checks and not all(checks)
        else:
            assert checks and all(checks)
