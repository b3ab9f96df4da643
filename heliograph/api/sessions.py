"""GET /api/v1/sessions (sessions with a matching record, newest activity first, paged by
cursor) and GET /api/v1/sessions/{session_id}: the session's records as a tree by path,
with costs (session ids may hold '/': the parameter takes the rest of the path)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import check_parameters, parse_filter
from heliograph.api._common import endpoint, path_param, positive_int, query_value
from heliograph.asgi import Request
from heliograph.errors import NotFound
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
    check_parameters(request.query)
    session_id = path_param(request, "session_id")
    session = await gw.analytics.run(gw.analytics.session, org, session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r}")
    return session


ROUTES = [
    Route("GET", "/api/v1/sessions", list_sessions),
    Route("GET", "/api/v1/sessions/{session_id:path}", get_session),
]
