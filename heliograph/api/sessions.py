"""GET /api/v1/sessions (sessions with a matching record, newest activity first, paged by
cursor) and GET /api/v1/sessions/{session_id}: the session's records as a tree by path,
with costs (session ids may hold '/': the parameter takes the rest of the path)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint, positive_int, query_value, read_one
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def list_sessions(gw: Any, request: Request, org: str) -> dict:
    query = request.query
    flt = parse_filter(query, ("limit", "cursor"))
    data, cursor = await gw.analytics.run(gw.analytics.sessions, org, flt,
                                          positive_int(query, "limit", 50),
                                          query_value(query, "cursor"))
    return {"data": data, "next_cursor": cursor}


@endpoint
async def get_session(gw: Any, request: Request, org: str) -> dict:
    return await read_one(gw, request, org, gw.analytics.session, "session_id",
                          "no session")


ROUTES = [
    Route("GET", "/api/v1/sessions", list_sessions),
    Route("GET", "/api/v1/sessions/{session_id:path}", get_session),
]
