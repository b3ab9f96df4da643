"""The rate-limit rollup (store/_ratelimit_rollup.py) against the raw rows it summarises,
on both stores: /api/v1/ratelimits and the Rate limits page's 429 events over windows cut
mid-hour (rollup hours plus raw edges), hand-made records for each kind of 429, a journal
replay, and migration 13's backfill of rows stored before it."""

from __future__ import annotations

import pytest
from test_store_rollups import WINDOWS, demo_records

from heliograph.analytics import open_analytics, summaries
from heliograph.analytics.filters import RequestFilter
from heliograph.store import open_store


def edge_records(make_record) -> list[dict]:
    """Every path a 429 takes, and reports tied on created_at (the id decides)."""
    at = "2024-06-09T10:{:02d}:00.000000Z".format
    attempt = {"model": "m1", "provider": "p1", "latency_ms": 5.0, "error": None}
    return [
        make_record("e1", at=at(1), provider="p1", model="m1", model_used="m1",
                    ratelimit={"remaining_requests": "5"}),
        make_record("e2", at=at(1), provider="p1", model="m1", model_used="m1",
                    ratelimit={"remaining_requests": "4"}),   # same time, larger id: newest
        # absorbed: the first attempt (another provider) got a 429, a fallback answered
        make_record("e3", at=at(2), provider="p1", model="m1", model_used="m1",
                    attempts=[{**attempt, "provider": "p2", "model": "m2", "status": 429},
                              {**attempt, "status": 200}]),
        # refused by the provider after retries (two 429 attempts, one without a model:
        # the record's is taken)
        make_record("e4", at=at(3), provider="p2", model="m2", model_used="m2", status=429,
                    attempts=[{**attempt, "provider": "p2", "model": "m2", "status": 429},
                              {**attempt, "provider": "p2", "model": None, "status": 429}]),
        # refused by the gateway: no provider, no attempt
        make_record("e5", at=at(4), model="m1", status=429),
        # a 429 with no attempts recorded but a provider (counted by its own status)
        make_record("e6", at=at(5), provider="p3", model="m3", model_used="m3", status=429,
                    attempts=[]),
        # a report from a record without a provider is not shown
        make_record("e7", at=at(6), model="m1", ratelimit={"remaining_requests": "1"}),
        # an error that is not a 429, and a float status
        make_record("e8", at=at(7), provider="p1", model="m1", model_used="m1", status=500,
                    attempts=[{**attempt, "status": 500}]),
        make_record("e9", at="2024-06-09T11:59:59.999999Z", provider="p1", model_used=None,
                    status=200, attempts=[{**attempt, "model": "", "status": 429.0},
                                          {**attempt, "status": 200}],
                    ratelimit={"remaining_tokens": "9"}),
    ]


@pytest.fixture
def logged(store, make_record):
    records = demo_records()
    for start in range(0, len(records), 400):   # several batches, as the writer does
        store.insert_records(records[start:start + 400])
    store.insert_records(edge_records(make_record))
    store.insert_records(demo_records(200, organization="org2"))   # never counted in org1
    return records


def answers(reader, flt: RequestFilter) -> tuple[dict, dict]:
    return reader.ratelimits("org1", flt), summaries.rate_limit_events(reader, "org1", flt)


def test_rollup_answers_equal_raw_rows(store, logged, reader, raw_reader):
    for since, until in [*WINDOWS, ("2024-06-09T10:01:30.000000Z", None)]:
        flt = RequestFilter(since=since, until=until)
        got, want = answers(reader, flt), answers(raw_reader, flt)
        assert got == want, (since, until)
    report, events = answers(reader, RequestFilter())
    assert sum(g["requests_429"] for g in report["data"]) > 20
    assert all(events["total"].values())
    # A filter no rollup keeps reads raw rows: the same answer either way.
    flt = RequestFilter(model="gpt-4o-mini")
    assert answers(reader, flt) == answers(raw_reader, flt)


def test_each_kind_of_429_is_counted_where_it_belongs(store, make_record, reader):
    store.insert_records(edge_records(make_record))
    report, events = answers(reader, RequestFilter(since="2024-06-09T10:00:00Z"))
    groups = {(g["provider"], g["model"]): g for g in report["data"]}
    assert set(groups) == {("p1", "m1"), ("p2", "m2"), ("p3", "m3"), ("p1", None)}
    assert groups["p1", "m1"]["latest"] == {"remaining_requests": "4"}   # e2 beats e1
    assert groups["p1", "m1"]["requests_429"] == 0
    assert groups["p2", "m2"]["requests_429"] == 3   # e3's first attempt, both of e4's
    assert groups["p2", "m2"]["latest"] is None
    assert groups["p3", "m3"]["rate_limited_over_time"] == [
        {"key": "2024-06-09T10:00Z", "count": 1}]
    assert groups["p1", None] == {
        "provider": "p1", "model": None, "latest": {"remaining_tokens": "9"},
        "latest_at": "2024-06-09T11:59:59.999999Z", "requests_429": 1,
        "rate_limited_over_time": [{"key": "2024-06-09T11:00Z", "count": 1}]}
    assert events["by_hour"] == [
        {"hour": "2024-06-09T10:00Z", "provider_429": 1, "absorbed_429": 1,
         "gateway_refused": 2},
        {"hour": "2024-06-09T11:00Z", "provider_429": 0, "absorbed_429": 1,
         "gateway_refused": 0}]


def test_a_replayed_batch_is_not_counted_twice(store, make_record, reader):
    records = edge_records(make_record)
    store.insert_records(records)
    before = answers(reader, RequestFilter())
    store.insert_records(records)
    store.insert_records(records[:3])
    assert answers(reader, RequestFilter()) == before


def test_migration_13_backfills_rows_stored_before_it(store_url, make_record):
    store = open_store(store_url)
    store.insert_records(demo_records(600))
    store.insert_records(edge_records(make_record))
    written = open_analytics(store_url)
    want = [answers(written, RequestFilter(since=since, until=until))
            for since, until in WINDOWS]
    written.close()
    with store.transaction(write=True) as cur:
        store.execute(cur, "DROP TABLE rollup_ratelimit_hourly")
        store.execute(cur, "DELETE FROM schema_migrations WHERE version = 13")
    store.close()
    store = open_store(store_url)   # migrates: version 13 again, backfilling
    backfilled = open_analytics(store_url)
    try:
        assert 13 in store.schema_versions()
        with store.transaction() as cur:
            assert store.execute(cur, "SELECT COUNT(*) FROM rollup_ratelimit_hourly"
                                 ).fetchone()[0] > 0
        assert [answers(backfilled, RequestFilter(since=since, until=until))
                for since, until in WINDOWS] == want
    finally:
        backfilled.close()
        store.close()


def test_the_rows_attempts_text_counts_as_the_attempts_themselves(store, make_record):
    """The writer hands the rate-limit rollup the attempts_json its requests rows hold,
    searched instead of encoding the attempts again: every kind of 429 counts the same
    either way (a float status 429.0 is written "429.0" and still matches)."""
    from heliograph.store import _ratelimit_rollup
    from heliograph.store._schema import REQUEST_COLUMNS

    records = edge_records(make_record)
    at = REQUEST_COLUMNS.index("attempts_json")
    texts = [store._request_row(rec)[at] for rec in records]
    assert any(_ratelimit_rollup.ATTEMPT_429_TEXT in t for t in texts if type(t) is str)
    with_texts = _ratelimit_rollup.deltas(records, texts)
    assert with_texts == _ratelimit_rollup.deltas(records)
    assert sum(row[0] for row in with_texts.values()) >= 4   # the attempts' 429s counted
