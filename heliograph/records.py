"""The log record: one per request, failed ones included.

A record is a plain dict (cheap to build on the hot path, cheap to serialise with orjson)
typed as `Record`, whose keys — RECORD_KEYS, in this order — are exactly the names
PRODUCT.md promises in the query API.
"""

from __future__ import annotations

import datetime as _dt
import functools
from typing import Any, TypedDict


class Record(TypedDict):
    id: str
    created_at: str                 # ISO 8601 UTC (utc_iso)
    organization: str | None
    key_id: str | None
    model: str | None               # as the caller asked
    model_used: str | None          # as the provider answered
    provider: str | None
    path: str
    status: int | None
    error: str | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cached_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    cost_known: bool
    cost_saved_usd: float | None
    user_id: str | None
    properties: dict[str, str]
    session_id: str | None
    session_path: str | None
    session_name: str | None
    cache: str | None               # "hit" | "miss" | None (cache not asked)
    # Which cache entry a hit was served from or a miss looked for: 16 hex digits of the
    # entry's key (proxy/cache.py entry_id), never the body. The Cache page's most-hit
    # entries group by it; None when the cache was not asked.
    cache_entry: str | None
    # A hit's: the id of the request whose answer it was served (Helicone's name).
    cache_reference_id: str | None
    attempts: list[dict[str, Any]]
    fallback_index: int | None
    ratelimit: dict[str, str] | None
    feedback: bool | None
    scores: dict[str, Any]
    request: Any
    response: Any
    # {"trace_id", "span_id", "parent_span_id"} (hex) when traces are exported: stored in
    # extra_json, so a log line can be found in the tracing backend and back.
    trace: dict[str, str] | None
    # The caller's Helicone-Request-Id when the record could not take it (not a UUID, or
    # already used in the organization): the record says so, under its fresh id.
    requested_id: str | None
    # Helicone-Prompt-Id, and Helicone-Model-Override (the model the cost is priced as).
    prompt_id: str | None
    model_override: str | None


RECORD_KEYS: tuple[str, ...] = tuple(Record.__annotations__)


def utc_iso(ts: float) -> str:
    """ISO 8601 UTC with microseconds and a Z: sorts lexicographically in time order."""
    seconds = int(ts)
    micros = int((ts - seconds) * 1_000_000)
    return f"{_second_prefix(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _second_prefix(seconds: int) -> str:
    # Every request formats a timestamp; within one second the prefix is the same.
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


# Every key, nothing known: what new_record copies. Copying a dict whose keys are all
# strings clones its table in one go; building the 40 entries from a literal each time
# cost ~3x as much, for every request.
_EMPTY: Record = {
    "id": "", "created_at": "",
    "organization": None, "key_id": None,
    "model": None, "model_used": None, "provider": None, "path": "",
    "status": None, "error": None, "latency_ms": None, "ttft_ms": None,
    "prompt_tokens": None, "completion_tokens": None, "total_tokens": None,
    "cached_tokens": None, "cache_write_tokens": None, "reasoning_tokens": None,
    "cost_usd": None, "cost_known": False, "cost_saved_usd": None,
    "user_id": None, "properties": {},
    "session_id": None, "session_path": None, "session_name": None,
    "cache": None, "cache_entry": None, "cache_reference_id": None,
    "attempts": [], "fallback_index": None, "ratelimit": None,
    "feedback": None, "scores": {},
    "request": None, "response": None, "trace": None,
    "requested_id": None, "prompt_id": None, "model_override": None,
}
assert tuple(_EMPTY) == RECORD_KEYS  # the copy keeps this order: the journal's JSON


def new_record(record_id: str, created_ts: float, path: str) -> Record:
    """A record with every key present and nothing known yet (its own containers)."""
    rec = _EMPTY.copy()
    rec["id"] = record_id
    rec["created_at"] = utc_iso(created_ts)
    rec["path"] = path
    rec["properties"] = {}
    rec["attempts"] = []
    rec["scores"] = {}
    return rec
