"""The dashboard's own aggregates (heliograph/analytics/summaries.py) on each store, every
expected number worked out by hand from the records below."""

import pytest

from heliograph.analytics import summaries
from heliograph.analytics.filters import RequestFilter

approx = pytest.approx
ALL = RequestFilter()


@pytest.fixture
def logged(store, make_record):
    attempt = {"model": "a", "provider": "p1", "latency_ms": 10.0, "error": None}
    store.insert_records([
        make_record("r1", at="2024-03-04T10:05:00.000000Z", model="a", provider="p1",
                    latency_ms=100.0, cache="miss", properties={"Workflow": "w1", "Env": "prod"},
                    attempts=[{**attempt, "status": 200}],
                    ratelimit={"remaining_requests": "90", "remaining_tokens": "9000"}),
        make_record("r2", at="2024-03-04T10:30:00.000000Z", model="a", provider="p1",
                    latency_ms=20.0, cache="hit", cost_usd=0.0, cost_known=True,
                    cost_saved_usd=0.25, properties={"workflow": "w2"}),
        make_record("r3", at="2024-03-04T11:00:00.000000Z", model="a", provider="p1",
                    latency_ms=300.0, cache="miss", properties={"WORKFLOW": "w1"},
                    status=200, attempts=[{**attempt, "status": 429}, {**attempt, "status": 200}],
                    ratelimit={"remaining_requests": "0", "remaining_tokens": "oops"}),
        # A 429 from the provider, and one the gateway's own policy gave (no attempt).
        make_record("r4", at="2024-03-04T11:10:00.000000Z", model="b", provider="p2",
                    status=429, latency_ms=50.0, attempts=[{**attempt, "status": 429}]),
        make_record("r5", at="2024-03-04T11:20:00.000000Z", model="b", status=429,
                    latency_ms=1.0, attempts=[]),
        make_record("other", organization="org2", latency_ms=5.0, cache="hit",
                    cost_saved_usd=9.0, properties={"Secret": "x"}, status=429),
    ])


def test_property_names_most_used_first(reader, logged):
    assert summaries.property_names(reader, "org1", ALL) == [
        {"name": "workflow", "requests": 3}, {"name": "env", "requests": 1}]
    after = RequestFilter(since="2024-03-04T10:10:00.000000Z")  # as parse_filter leaves it
    assert summaries.property_names(reader, "org1", after) == [
        {"name": "workflow", "requests": 2}]


def test_cache_summary_counts_only_requests_that_asked(reader, logged):
    summary = summaries.cache_summary(reader, "org1", ALL)
    assert summary == {"requests": 3, "hits": 1, "misses": 2, "hit_rate": approx(1 / 3),
                       "saved_usd": approx(0.25), "avg_hit_latency_ms": approx(20.0),
                       "avg_miss_latency_ms": approx(200.0),
                       "time_saved_ms": approx(180.0)}
    none = summaries.cache_summary(reader, "org1", RequestFilter(model="b"))
    assert none["requests"] == 0 and none["hit_rate"] == 0.0 and none["saved_usd"] == 0


def test_rate_limit_events_by_hour(reader, logged):
    events = summaries.rate_limit_events(reader, "org1", ALL)
    assert events["by_hour"] == [
        {"hour": "2024-03-04T11:00Z", "provider_429": 1, "absorbed_429": 1,
         "gateway_refused": 1}]
    assert events["total"] == {"provider_429": 1, "absorbed_429": 1, "gateway_refused": 1}


def test_ratelimit_samples_per_provider_and_model(reader, logged):
    samples = summaries.ratelimit_samples(reader, "org1", ALL)
    assert samples["requests"] == {"p1/None": {
        "x": ["2024-03-04T10:05:00.000000Z", "2024-03-04T11:00:00.000000Z"], "y": [90.0, 0.0]}}
    # "oops" is not a number: that point is left out, not plotted as 0.
    assert samples["tokens"] == {"p1/None": {"x": ["2024-03-04T10:05:00.000000Z"],
                                             "y": [9000.0]}}

