"""GET /api/v1/users (per-user summaries over the filtered records) and
GET /api/v1/users/{user_id} (user ids may hold '/': the parameter takes the rest of the
path)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import check_parameters, parse_filter
from heliograph.api._common import endpoint, path_param
from heliograph.asgi import Request
from heliograph.errors import NotFound
from heliograph.routes import Route


@endpoint
async def list_users(gw: Any, request: Request, org: str) -> dict:
    flt = parse_filter(request.query)
    return {"data": await gw.analytics.run(gw.analytics.users, org, flt)}


@endpoint
async def get_user(gw: Any, request: Request, org: str) -> dict:
    check_parameters(request.query)
    user_id = path_param(request, "user_id")
    user = await gw.analytics.run(gw.analytics.user, org, user_id)
    if user is None:
        raise NotFound(f"no requests from user {user_id!r}")
    return user


ROUTES = [
    Route("GET", "/api/v1/users", list_users),
    Route("GET", "/api/v1/users/{user_id:path}", get_user),
]
