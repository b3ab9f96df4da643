"""GET /api/v1/requests, /requests/{id}, /metrics, /users[/{id}], /sessions/{id};
POST /v1/request/{id}/feedback and /score."""

from __future__ import annotations

import asyncio
import datetime as dt

import orjson

from heliograph.asgi import Request, is_whole_number, send_error, send_json
from heliograph.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound
from heliograph.scores import scores_from_body
from heliograph.store.base import RequestFilter

FILTER_KEYS = {"model", "provider", "status", "user_id", "session_id", "cache", "since",
               "until", "q"}


def _iso(value: str, name: str) -> str:
    """Accept any ISO 8601 timestamp; normalise to the stored UTC form for comparison."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 timestamp, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_filter(query: list[tuple[str, str]]) -> RequestFilter:
    flt = RequestFilter()
    for name, value in query:
        if name.startswith("property."):
            flt.properties[name[len("property."):].lower()] = value
        elif name == "status":
            if not is_whole_number(value) or not 100 <= int(value) <= 599:
                raise BadRequest(f"status must be an HTTP status code, got {value!r}")
            flt.status = int(value)
        elif name == "cache":
            if value not in ("hit", "miss"):
                raise BadRequest("cache must be 'hit' or 'miss'")
            flt.cache = value
        elif name in ("since", "until"):
            setattr(flt, name, _iso(value, name))
        elif name in FILTER_KEYS:
            setattr(flt, name, value)
    return flt


def _query_value(query, name, default=None):
    for key, value in query:
        if key == name:
            return value
    return default


async def _read(method, *args):
    """A store read off the event loop. The store raises ValueError for a query it cannot
    run (bad cursor, timestamp or group_by): that is the caller's 400, not our 500."""
    try:
        return await asyncio.to_thread(method, *args)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_query") from None


def _refuse_nul(request: Request) -> None:
    # No stored text holds a NUL (PostgreSQL refuses them), so none can match; say so
    # rather than let the database fail on it.
    if "\x00" in request.path or any("\x00" in name or "\x00" in value
                                     for name, value in request.query):
        raise BadRequest("NUL characters are not allowed in the path or query")


class QueryAPI:
    def __init__(self, gw):
        self.gw = gw

    async def handle(self, request: Request, send) -> None:
        try:
            principal = await self.gw.auth.authenticate(request.headers)
            _refuse_nul(request)
            status, payload = await self._route(request, principal.organization)
        except GatewayError as error:
            await send_error(send, error)
            return
        await send_json(send, status, payload)

    async def _route(self, request: Request, org: str):
        store = self.gw.store
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        # /v1/request/{id}/feedback|score
        if parts[:2] == ["v1", "request"] and len(parts) == 4 and method == "POST":
            return await self._feedback(request, org, parts[2], parts[3])
        if method != "GET":
            raise MethodNotAllowed(f"{method} is not allowed on {request.path}")
        resource = parts[2] if len(parts) > 2 else ""
        query = request.query
        if resource == "requests" and len(parts) == 3:
            flt = parse_filter(query)
            limit = _query_value(query, "limit", "50")
            if not is_whole_number(limit):
                raise BadRequest("limit must be a positive integer")
            data, cursor = await _read(
                store.list_requests, org, flt, min(max(int(limit), 1), 1000),
                _query_value(query, "cursor"), _query_value(query, "bodies") == "true")
            return 200, {"data": data, "next_cursor": cursor}
        if resource == "requests" and len(parts) == 4:
            record = await _read(store.get_request, org, parts[3])
            if record is None:
                raise NotFound(f"no request {parts[3]!r}")
            return 200, record
        if resource == "metrics" and len(parts) == 3:
            group_by = _query_value(query, "group_by", "model")
            return 200, await _read(store.metrics, org, parse_filter(query), group_by)
        if resource == "users" and len(parts) == 3:
            return 200, {"data": await _read(store.users, org, parse_filter(query))}
        if resource == "users" and len(parts) == 4:
            user = await _read(store.user, org, parts[3])
            if user is None:
                raise NotFound(f"no requests from user {parts[3]!r}")
            return 200, user
        if resource == "ratelimits" and len(parts) == 3:
            return 200, await _read(store.ratelimits, org, parse_filter(query))
        if resource == "sessions" and len(parts) == 4:
            session = await _read(store.session, org, parts[3])
            if session is None:
                raise NotFound(f"no session {parts[3]!r}")
            return 200, session
        raise NotFound(f"no such endpoint: {request.path}")

    async def _feedback(self, request: Request, org: str, request_id: str, kind: str):
        raw = await request.body(1024 * 1024)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("body is not valid JSON", code="invalid_json") from None
        store = self.gw.store
        if kind == "feedback":
            rating = body.get("rating") if isinstance(body, dict) else None
            if not isinstance(rating, bool):
                raise BadRequest('feedback body must be {"rating": true|false}')
            found = await _read(store.set_feedback, org, request_id, rating)
        elif kind == "score":
            found = await _read(store.set_score, org, request_id, scores_from_body(body))
        else:
            raise NotFound(f"no such endpoint: {request.path}")
        if not found:
            # The writer may not have flushed a just-finished request yet.
            raise NotFound(f"no request {request_id!r} (records reach the store within a "
                           "second of the answer)")
        return 200, {"id": request_id, "ok": True}
