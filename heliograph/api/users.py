"""GET /api/v1/users (per-user summaries over the filtered records) and
GET /api/v1/users/{user_id} (user ids may hold '/': the parameter takes the rest of the
path)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint, read_one
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def list_users(gw: Any, request: Request, org: str) -> dict:
    flt = parse_filter(request.query)
    return {"data": await gw.analytics.run(gw.analytics.users, org, flt)}


@endpoint
async def get_user(gw: Any, request: Request, org: str) -> dict:
    return await read_one(gw, request, org, gw.analytics.user, "user_id",
                          "no requests from user")


ROUTES = [
    Route("GET", "/api/v1/users", list_users),
    Route("GET", "/api/v1/users/{user_id:path}", get_user),
]
