"""GET /api/v1/overview: the dashboard's first page in one answer (totals with latency
p50/p95 and cache savings, cost by day, top models and providers), over the filters."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def overview(gw: Any, request: Request, org: str) -> dict:
    flt = parse_filter(request.query)
    return await gw.analytics.run(gw.analytics.overview, org, flt)


ROUTES = [Route("GET", "/api/v1/overview", overview)]
