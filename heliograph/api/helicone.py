"""Helicone's REST query API, so scripts written against Helicone read the gateway's log:

    POST /v1/request/query (and /v1/request/query-clickhouse, the same here)
    POST /v1/session/query     POST /v1/user/query     POST /v1/user/metrics/query

Bodies and answers in Helicone's shapes (`{"data": ..., "error": null}`); filter trees
translated by analytics/helicone_tree.py into the query API's own conditions. Errors
are the gateway's usual OpenAI-shaped ones, with a message naming what was not taken.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import orjson

from heliograph.analytics.conditions import Branch, Condition, Node, condition
from heliograph.analytics.filters import RequestFilter, check_parameters
from heliograph.analytics.helicone_reads import (
    SORT_COLUMNS,
    requests_page,
    session_summaries,
    user_summaries,
)
from heliograph.analytics.helicone_tree import translate
from heliograph.api._common import endpoint
from heliograph.asgi import Request
from heliograph.errors import BadRequest
from heliograph.records import utc_iso
from heliograph.routes import Route

MAX_BODY_BYTES = 1024 * 1024
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_USER_IDS = 1000
USER_SORT_KEYS = ("user_id", "active_for", "first_active", "last_active", "total_requests",
                  "average_requests_per_day_active", "average_tokens_per_request",
                  "total_prompt_tokens", "total_completion_tokens", "cost")


async def _body(request: Request, allowed: set[str]) -> dict:
    check_parameters(request.query)
    raw = await request.body(MAX_BODY_BYTES)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="invalid_json")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown body field(s): {', '.join(unknown)}; this endpoint takes "
                         f"{', '.join(sorted(allowed))}", code="unknown_parameter")
    return body


def _count(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, got "
                         f"{value!r}"[:200], code="invalid_query")
    return value


def _page(body: dict) -> tuple[int, int]:
    return (_count(body, "offset", 0, 0, 10**9),
            _count(body, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT))


def _time_window(body: dict, start_key: str, end_key: str, scale: float) -> list[Condition]:
    """timeFilter {start, end} in epoch units of `scale` seconds → created_at bounds."""
    window = body.get("timeFilter")
    if window is None:
        return []
    bounds = window if isinstance(window, dict) else {}
    out = []
    for key, op in ((start_key, "gte"), (end_key, "lte")):
        value = bounds.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not \
                0 <= value * scale < 4_102_444_800:
            raise BadRequest(f"timeFilter needs {start_key} and {end_key} (epoch "
                             f"{'milliseconds' if scale < 1 else 'seconds'})",
                             code="invalid_query")
        out.append(condition("created_at", op, utc_iso(value * scale)))
    return out


def _sort(sort: Any, keys: dict | tuple, default: str) -> tuple[str, bool]:
    if sort is None:
        return default, True
    if not isinstance(sort, dict):
        raise BadRequest("sort must be {field: \"asc\"|\"desc\"}", code="invalid_query")
    for key, direction in sort.items():
        if key == "random" or direction is None:
            continue
        if key not in keys or direction not in ("asc", "desc"):
            raise BadRequest(f"sort takes one of {', '.join(keys)} with \"asc\" or \"desc\", "
                             f"got {key}: {direction!r}"[:300], code="invalid_query")
        return key, direction == "desc"
    return default, True


def _end_time(record: dict) -> str | None:
    if record["latency_ms"] is None:
        return None
    start = _dt.datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    return utc_iso(start.timestamp() + record["latency_ms"] / 1000)


def helicone_request(record: dict) -> dict:
    """A log record in the shape of Helicone's HeliconeRequest."""
    model = record["model_used"] or record["model"]
    return {
        "request_id": record["id"], "request_created_at": record["created_at"],
        "request_body": record["request"], "request_path": record["path"],
        "request_user_id": record["user_id"], "request_properties": record["properties"],
        "request_model": record["model"], "model_override": None,
        "helicone_user": record["key_id"],
        "response_id": record["id"], "response_created_at": _end_time(record),
        "response_body": record["response"], "response_status": record["status"],
        "response_model": record["model_used"],
        "provider": (record["provider"] or "custom").upper(),
        "delay_ms": record["latency_ms"], "time_to_first_token": record["ttft_ms"],
        "total_tokens": record["total_tokens"], "prompt_tokens": record["prompt_tokens"],
        "completion_tokens": record["completion_tokens"],
        "prompt_cache_read_tokens": record["cached_tokens"],
        "prompt_cache_write_tokens": record["cache_write_tokens"],
        "prompt_audio_tokens": None, "completion_audio_tokens": None,
        "cost": record["cost_usd"], "costUSD": record["cost_usd"],
        "feedback_rating": record["feedback"], "feedback_id": None,
        "feedback_created_at": None, "scores": record["scores"],
        "properties": record["properties"], "model": model,
        "cache_enabled": record["cache"] is not None, "cache_reference_id": record["cache_reference_id"],
        "prompt_id": None, "prompt_version": None, "signed_body_url": None,
        "llmSchema": None, "country_code": None, "asset_ids": None, "asset_urls": None,
        "assets": [], "target_url": "", "request_referrer": None,
        "ai_gateway_body_mapping": None,
    }


@endpoint
async def query_requests(gw: Any, request: Request, org: str) -> dict:
    body = await _body(request, {"filter", "offset", "limit", "sort", "isCached",
                                 "includeInputs", "isPartOfExperiment", "isScored"})
    flt = RequestFilter(conditions=translate(body.get("filter", "all")).conditions)
    if body.get("isCached") is True:
        flt.cache = "hit"
    if body.get("isScored") is True:
        raise BadRequest("isScored is not supported: filter on the scores you posted with "
                         "GET /api/v1/requests instead", code="unsupported_filter")
    if body.get("isPartOfExperiment") is True:
        return {"data": [], "error": None}  # the gateway runs no experiments
    sort, descending = _sort(body.get("sort"), tuple(SORT_COLUMNS), "created_at")
    offset, limit = _page(body)
    analytics = gw.analytics
    records = await analytics.run(requests_page, analytics, org, flt, sort, descending,
                                  offset, limit)
    return {"data": [helicone_request(record) for record in records], "error": None}


@endpoint
async def query_sessions(gw: Any, request: Request, org: str) -> dict:
    body = await _body(request, {"search", "timeFilter", "nameEquals", "timezoneDifference",
                                 "filter", "offset", "limit"})
    conditions = [*translate(body.get("filter", "all")).conditions,
                  *_time_window(body, "startTimeUnixMs", "endTimeUnixMs", 0.001)]
    search = body.get("search")
    if isinstance(search, str) and search.strip():
        conditions.append(Branch("or", (condition("session_id", "contains", search.strip()),
                                        condition("session_name", "contains",
                                                  search.strip()))))
    if body.get("nameEquals"):
        conditions.append(condition("session_name", "eq", body["nameEquals"]))
    offset, limit = _page(body)
    analytics = gw.analytics
    found = await analytics.run(session_summaries, analytics, org,
                                RequestFilter(conditions=conditions), offset, limit)
    return {"data": found, "error": None}


@endpoint
async def query_users(gw: Any, request: Request, org: str) -> dict:
    body = await _body(request, {"userIds", "timeFilter"})
    conditions: list[Node] = [*_time_window(body, "startTimeUnixSeconds",
                                            "endTimeUnixSeconds", 1)]
    user_ids = body.get("userIds")
    if user_ids is not None:
        if not isinstance(user_ids, list) or len(user_ids) > MAX_USER_IDS:
            raise BadRequest(f"userIds must be a list of at most {MAX_USER_IDS} ids",
                             code="invalid_query")
        if not user_ids:
            return {"data": [], "error": None}
        conditions.append(Branch("or", tuple(condition("user_id", "eq", user_id)
                                             for user_id in user_ids)))
    analytics = gw.analytics
    users = await analytics.run(user_summaries, analytics, org,
                                RequestFilter(conditions=conditions))
    return {"data": [{"user_id": u["user_id"], "count": u["total_requests"],
                      "prompt_tokens": u["total_prompt_tokens"],
                      "completion_tokens": u["total_completion_tokens"], "cost": u["cost"]}
                     for u in users], "error": None}


@endpoint
async def query_user_metrics(gw: Any, request: Request, org: str) -> dict:
    body = await _body(request, {"filter", "offset", "limit", "timeFilter",
                                 "timeZoneDifferenceMinutes", "sort"})
    translated = translate(body.get("filter", "all"), allow_users=True)
    conditions = [*translated.conditions,
                  *_time_window(body, "startTimeUnixSeconds", "endTimeUnixSeconds", 1)]
    sort, descending = _sort(body.get("sort"), USER_SORT_KEYS, "last_active")
    offset, limit = _page(body)
    analytics = gw.analytics
    users = await analytics.run(user_summaries, analytics, org,
                                RequestFilter(conditions=conditions))
    users = [u for u in users if all(test(u) for test in translated.user_tests)]
    users.sort(key=lambda u: (u[sort], u["user_id"]), reverse=descending)
    return {"data": {"users": users[offset:offset + limit], "count": len(users),
                     "hasUsers": bool(users)}, "error": None}


ROUTES = [
    Route("POST", "/v1/request/query", query_requests),
    Route("POST", "/v1/request/query-clickhouse", query_requests),
    Route("POST", "/v1/session/query", query_sessions),
    Route("POST", "/v1/user/query", query_users),
    Route("POST", "/v1/user/metrics/query", query_user_metrics),
]
