"""GET /api/v1/requests (filtered, newest first, paged by cursor) and
GET /api/v1/requests/{request_id} (one record with its bodies)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import boolean, endpoint, positive_int, query_value, read_one
from heliograph.api.export import export_requests
from heliograph.asgi import Request
from heliograph.routes import Route

LIST_PARAMETERS = ("limit", "cursor", "bodies")


@endpoint
async def list_requests(gw: Any, request: Request, org: str) -> dict:
    query = request.query
    flt = parse_filter(query, LIST_PARAMETERS)
    limit = positive_int(query, "limit", 50)
    with_bodies = boolean(query, "bodies")
    analytics = gw.analytics
    data, cursor = await analytics.run(analytics.list_requests, org, flt, limit,
                                       query_value(query, "cursor"), with_bodies)
    return {"data": data, "next_cursor": cursor}


@endpoint
async def get_request(gw: Any, request: Request, org: str) -> dict:
    return await read_one(gw, request, org, gw.analytics.get_request, "request_id",
                          "no request", journaled=True)


ROUTES = [
    Route("GET", "/api/v1/requests", list_requests),
    # Before the {request_id} route, which would take "export" for an id.
    Route("GET", "/api/v1/requests/export", export_requests),
    Route("GET", "/api/v1/requests/{request_id}", get_request),
]
