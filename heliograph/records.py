"""The log record: one per request, failed ones included.

A record is a plain dict (cheap to build on the hot path, cheap to serialise with orjson)
whose keys are exactly RECORD_KEYS — the names PRODUCT.md promises in the query API.
"""

from __future__ import annotations

import datetime as _dt
import functools

RECORD_KEYS: tuple[str, ...] = (
    "id", "created_at", "organization", "key_id",
    "model", "model_used", "provider", "path", "status", "error",
    "latency_ms", "ttft_ms",
    "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "cache_write_tokens", "reasoning_tokens",
    "cost_usd", "cost_known", "cost_saved_usd",
    "user_id", "properties",
    "session_id", "session_path", "session_name",
    "cache", "attempts", "fallback_index", "ratelimit",
    "feedback", "scores",
    "request", "response",
)


def utc_iso(ts: float) -> str:
    """ISO 8601 UTC with microseconds and a Z: sorts lexicographically in time order."""
    seconds = int(ts)
    micros = int((ts - seconds) * 1_000_000)
    return f"{_second_prefix(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _second_prefix(seconds: int) -> str:
    # Every request formats a timestamp; within one second the prefix is the same.
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def new_record(record_id: str, created_ts: float, path: str) -> dict:
    """A record with every key present and nothing known yet."""
    rec = dict.fromkeys(RECORD_KEYS)
    rec["id"] = record_id
    rec["created_at"] = utc_iso(created_ts)
    rec["path"] = path
    rec["properties"] = {}
    rec["attempts"] = []
    rec["scores"] = {}
    rec["cost_known"] = False
    return rec
