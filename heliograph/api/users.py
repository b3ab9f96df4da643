"""GET /api/v1/users (per-user summaries over the filtered records, a page at a time:
`sort`, `order`, `limit`, `cursor`) and
GET /api/v1/users/{user_id} (user ids may hold '/': the parameter takes the rest of the
path)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint, positive_int, query_value, read_one
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def list_users(gw: Any, request: Request, org: str) -> dict:
    query = request.query
    flt = parse_filter(query, ("sort", "order", "limit", "cursor"))
    data, cursor = await gw.analytics.run(
        gw.analytics.users_page, org, flt, query_value(query, "sort", "requests"),
        query_value(query, "order"), positive_int(query, "limit", 50),
        query_value(query, "cursor"))
    return {"data": data, "next_cursor": cursor}


@endpoint
async def get_user(gw: Any, request: Request, org: str) -> dict:
    return await read_one(gw, request, org, gw.analytics.user, "user_id",
                          "no requests from user")


ROUTES = [
    Route("GET", "/api/v1/users", list_users),
    Route("GET", "/api/v1/users/{user_id:path}", get_user),
]
