"""GET /api/v1/metrics?group_by=…: totals per model, provider, user, session, property or
time bucket, over the filtered records."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint, query_value
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def metrics(gw: Any, request: Request, org: str) -> dict:
    flt = parse_filter(request.query, ("group_by",))
    group_by = query_value(request.query, "group_by", "model")
    return await gw.analytics.run(gw.analytics.metrics, org, flt, group_by)


ROUTES = [Route("GET", "/api/v1/metrics", metrics)]
