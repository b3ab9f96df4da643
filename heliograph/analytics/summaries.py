"""Summaries the dashboard shows that the query API does not answer as such: property
names in use, cache savings, rate-limit events and the remaining limits over time.

Property names and cache savings come from the read side's own (rollup-backed) answers;
rate-limit events come from their rollup (_ratelimits.py) and the limits a bounded read of the latest
reports. All are scoped to the organization and the request filters like every query in
reader.py. Call them through the read side's threads:
`await analytics.run(summaries.cache_summary, analytics, org, flt)`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from heliograph.analytics import _ratelimits
from heliograph.analytics._where import compile_filter
from heliograph.analytics.filters import RequestFilter

MAX_PROPERTY_NAMES = 50


def _where(analytics: Any, organization: str, flt: RequestFilter) -> tuple[str, list]:
    return compile_filter(organization, flt, analytics.dialect.like_ci)


def property_names(analytics: Any, organization: str, flt: RequestFilter,
                   limit: int = MAX_PROPERTY_NAMES) -> list[dict]:
    """[{"name", "requests"}], most used first (names lower-cased, as stored): the
    read side's property summary (rollups where they answer), names only."""
    found = analytics.properties(organization, flt, None, 1)["data"]
    return [{"name": p["name"], "requests": p["requests"]} for p in found[:limit]]


def cache_summary(analytics: Any, organization: str, flt: RequestFilter) -> dict:
    """Requests that asked for the cache: hits, misses, hit rate, money saved, and time
    saved (each hit counted at the average miss's latency minus its own). Hits and misses
    are two metrics totals (from rollups where they answer)."""
    totals = {}
    for outcome in ("hit", "miss"):
        if flt.cache in (None, outcome):
            totals[outcome] = analytics.metrics(organization, replace(flt, cache=outcome),
                                                "model")["total"]
        else:
            totals[outcome] = {"requests": 0, "avg_latency_ms": None}
    hit, miss = totals["hit"], totals["miss"]
    hits, total = hit["requests"], hit["requests"] + miss["requests"]
    saved = hit.get("cost_saved_usd") or 0.0
    hit_ms, miss_ms = hit["avg_latency_ms"], miss["avg_latency_ms"]
    time_saved_ms = (hits * max(0.0, miss_ms - (hit_ms or 0.0))
                     if hits and miss_ms is not None else 0.0)
    return {"requests": total, "hits": hits, "misses": miss["requests"],
            "hit_rate": hits / total if total else 0.0, "saved_usd": float(saved or 0),
            "time_saved_ms": time_saved_ms, "avg_hit_latency_ms": hit_ms,
            "avg_miss_latency_ms": miss_ms}


def rate_limit_events(analytics: Any, organization: str, flt: RequestFilter) -> dict:
    """429s by hour: refused by the provider (the request failed with it), absorbed (an
    attempt got a 429 but a retry or fallback answered), and refused by the gateway
    itself (a rate-limit policy or budget: no upstream attempt was made). From the
    rate-limit rollup where it answers (analytics/_ratelimits.py)."""
    return _ratelimits.rate_limit_events(analytics, organization, flt)


RATELIMIT_SAMPLES = 2000


def ratelimit_samples(analytics: Any, organization: str, flt: RequestFilter,
                      limit: int = RATELIMIT_SAMPLES) -> dict:
    """The remaining requests and tokens providers reported, over time, per
    provider/model: the latest `limit` reports in the filter (a bounded read, newest
    first by the created_at index), oldest first in each series."""
    import orjson

    where, params = _where(analytics, organization, flt)
    rows = analytics._fetchall(
        "SELECT r.provider, r.model_used, r.created_at, r.ratelimit_json FROM requests r"
        f" WHERE {where} AND r.ratelimit_json IS NOT NULL"
        " ORDER BY r.created_at DESC LIMIT ?", (*params, limit))
    series: dict[str, dict[str, dict[str, list]]] = {"requests": {}, "tokens": {}}
    for provider, model, created_at, raw in reversed(rows):
        reported = orjson.loads(raw) or {}
        for kind in ("requests", "tokens"):
            try:
                number = float(reported[f"remaining_{kind}"])
            except (KeyError, TypeError, ValueError):
                continue
            points = series[kind].setdefault(f"{provider}/{model}", {"x": [], "y": []})
            points["x"].append(created_at)
            points["y"].append(number)
    return series
