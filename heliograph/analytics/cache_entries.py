"""The most-hit cache entries of a window: hits, money and time saved, the model, the first
and last hit, the request that filled the entry and a preview of its prompt.

Hits per entry come from the rollups the writer keeps (store/_cache_entries.py): whole
days and hours from them, the minutes at the window's edges from raw rows, all summed and
ranked by the database in one statement. A filter the rollup does not hold (a user, a
property, text search...) is answered from the raw hits it selects instead. Then one
lookup per listed entry reads the request that filled it (the one the latest hit names
in cache_reference_id, by its key; for hits that name none, the entry's latest miss
through requests_org_cache_entry): its latency prices the time each hit saved, and its
prompt is the preview.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from heliograph.analytics._grouped import active_fields
from heliograph.analytics._where import compile_filter
from heliograph.analytics._window import split
from heliograph.analytics.filters import RequestFilter
from heliograph.store._cache_entries import FILL_AT, TABLES

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PREVIEW_CHARS = 120
# Filters the rollup answers: the model is a column of it, and every row is a hit.
_ROLLUP_FILTERS = frozenset({"model", "cache"})

_COLUMNS = ("cache_entry", "hits", "saved_usd", "latency_sum", "latency_count",
            "first_at", "last_at", "model", "last_fill")
# A raw hit as one rollup row, to be summed with them.
_RAW_HIT = ", ".join(f"{expr} AS {name}" for expr, name in zip((
    "r.cache_entry", "1", "COALESCE(r.cost_saved_usd, 0)", "COALESCE(r.latency_ms, 0)",
    "CASE WHEN r.latency_ms IS NULL THEN 0 ELSE 1 END", "r.created_at", "r.created_at",
    "COALESCE(r.model, '')", "CASE WHEN r.cache_reference_id IS NULL THEN ''"
    " ELSE r.created_at || r.cache_reference_id END"), _COLUMNS))


def _raw_hits(reader: Any, organization: str, flt: RequestFilter) -> tuple[str, list]:
    where, params = compile_filter(organization, flt, reader.dialect.like_ci)
    return (f"SELECT {_RAW_HIT} FROM requests r WHERE {where} AND r.cache = 'hit'"
            " AND r.cache_entry IS NOT NULL", params)


def _rollup_hits(organization: str, flt: RequestFilter, grain: str, lo: str | None,
                 hi: str | None) -> tuple[str, list]:
    clauses, params = ["organization = ?"], [organization]
    for column, value in (("bucket >= ?", lo), ("bucket < ?", hi), ("model = ?", flt.model)):
        if value is not None:
            clauses.append(column)
            params.append(value)
    return (f"SELECT {', '.join(_COLUMNS)} FROM {TABLES[grain]}"
            f" WHERE {' AND '.join(clauses)}", params)


def _parts(reader: Any, organization: str, flt: RequestFilter) -> list[tuple[str, list]]:
    """SELECTs of hit rows (rollup rows, or raw hits as rows of one) covering the window."""
    if not (reader.use_rollups and active_fields(flt) <= _ROLLUP_FILTERS):
        return [_raw_hits(reader, organization, flt)]
    parts = []
    for piece in split(flt.since, flt.until, ("day", "hour")):
        if piece.grain == "raw":
            edge = dataclasses.replace(flt, since=piece.lo, until=piece.hi)
            parts.append(_raw_hits(reader, organization, edge))
        else:
            parts.append(_rollup_hits(organization, flt, piece.grain, piece.lo, piece.hi))
    return parts


def cache_entries(reader: Any, organization: str, flt: RequestFilter,
                  limit: int = DEFAULT_LIMIT) -> list[dict]:
    """The `limit` entries with the most hits in the filter, most hits first."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    if flt.cache == "miss":
        return []   # a miss saves nothing
    parts = _parts(reader, organization, flt)
    if not parts:
        return []   # an empty window
    union = " UNION ALL ".join(sql for sql, _ in parts)
    rows = reader._fetchall(
        "SELECT cache_entry, SUM(hits), SUM(saved_usd), SUM(latency_sum),"
        " SUM(latency_count), MIN(first_at), MAX(last_at), MAX(model), MAX(last_fill)"
        f" FROM ({union}) AS h GROUP BY cache_entry"
        " ORDER BY SUM(hits) DESC, SUM(saved_usd) DESC, MAX(last_at) DESC, cache_entry"
        " LIMIT ?", [*(p for _, params in parts for p in params), limit])
    return [_entry(reader, organization, *row) for row in rows]


def _entry(reader: Any, organization: str, entry: str, hits, saved, latency_sum,
           latency_count, first_at: str, last_at: str, model: str, last_fill: str) -> dict:
    reference = last_fill[FILL_AT:] if last_fill else None
    filled = (_request(reader, organization, reference) if reference
              else _latest_miss(reader, organization, entry, last_at))
    fill_ms = filled["latency_ms"] if filled else None
    # Each hit saved the call that filled the entry, less its own (cache lookup) time.
    time_saved = (max(0.0, int(latency_count) * fill_ms - float(latency_sum))
                  if fill_ms is not None else None)
    body = filled["request_body"] if filled else _any_request_body(reader, organization,
                                                                     entry, last_at)
    return {"cache_entry": entry, "hits": int(hits), "saved_usd": float(saved or 0.0),
            "time_saved_ms": time_saved,
            "avg_hit_latency_ms": float(latency_sum) / int(latency_count)
            if latency_count else None,
            "model": model or None, "prompt_preview": prompt_preview(body),
            "first_hit_at": first_at, "last_hit_at": last_at,
            "filled_by": filled["id"] if filled else None,
            "filled_at": filled["created_at"] if filled else None,
            "fill_latency_ms": fill_ms}


_BODY_JOIN = (" LEFT JOIN request_bodies b ON b.organization = r.organization"
              " AND b.request_id = r.id")


def _request(reader: Any, organization: str, request_id: str) -> dict | None:
    """The request the latest hit names as the one whose answer it was served
    (cache_reference_id): read by its key."""
    return _filled(reader._fetchall(
        "SELECT r.id, r.created_at, r.latency_ms, b.request_body FROM requests r"
        f"{_BODY_JOIN} WHERE r.organization = ? AND r.id = ?", (organization, request_id)))


def _latest_miss(reader: Any, organization: str, entry: str, before: str) -> dict | None:
    """For hits that name no fill (logged before entries carried their request's id):
    the last successful miss of the entry at or before `before`, most likely the fill."""
    return _filled(reader._fetchall(
        "SELECT r.id, r.created_at, r.latency_ms, b.request_body FROM requests r"
        f"{_BODY_JOIN} WHERE r.organization = ? AND r.cache_entry = ? AND r.cache = 'miss'"
        " AND r.created_at <= ? AND r.status >= 200 AND r.status < 300"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT 1", (organization, entry, before)))


def _filled(rows: list[tuple]) -> dict | None:
    if not rows:
        return None
    request_id, created_at, latency, body = rows[0]
    return {"id": request_id, "created_at": created_at,
            "latency_ms": None if latency is None else float(latency), "request_body": body}


def _any_request_body(reader: Any, organization: str, entry: str, at: str) -> str | None:
    """The prompt of a hit, when no fill is logged (it was before the entry was kept)."""
    rows = reader._fetchall(
        f"SELECT b.request_body FROM requests r{_BODY_JOIN} WHERE r.organization = ?"
        " AND r.cache_entry = ? AND r.cache = 'hit' AND r.created_at = ? LIMIT 1",
        (organization, entry, at))
    return rows[0][0] if rows else None


def prompt_preview(request_body: str | None, chars: int = PREVIEW_CHARS) -> str | None:
    """The last user message's text, whitespace collapsed, cut at `chars`: whatever the
    wire format (OpenAI chat, Anthropic messages, the Responses API, completions)."""
    if not request_body:
        return None
    try:
        body = orjson.loads(request_body)
    except orjson.JSONDecodeError:
        return None
    text = _last_user_text(body) if isinstance(body, dict) else None
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _last_user_text(body: dict) -> str | None:
    messages = body.get("messages")
    source = body.get("input")
    if not isinstance(messages, list):
        if isinstance(source, str):
            return source
        messages = source if isinstance(source, list) else []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(block["text"] for block in content
                        if isinstance(block, dict) and isinstance(block.get("text"), str))
    return ""
