"""GET /api/v1/properties: property names, most used first, each with its requests, cost
and most used values; `?key=<name>` for one property's values. The request filters apply
(since/until are answered from rollups; other filters from the filtered records)."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint, positive_int, query_value
from heliograph.asgi import Request
from heliograph.routes import Route

PARAMETERS = ("key", "limit")


@endpoint
async def list_properties(gw: Any, request: Request, org: str) -> dict:
    query = request.query
    flt = parse_filter(query, PARAMETERS)
    analytics = gw.analytics
    return await analytics.run(analytics.properties, org, flt, query_value(query, "key"),
                               positive_int(query, "limit", 100))


ROUTES = [Route("GET", "/api/v1/properties", list_properties)]
