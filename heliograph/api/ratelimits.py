"""GET /api/v1/ratelimits: per provider and model, the latest limits the provider
reported and 429s by hour, over the filtered records."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def ratelimits(gw: Any, request: Request, org: str) -> dict:
    flt = parse_filter(request.query)
    return await gw.analytics.run(gw.analytics.ratelimits, org, flt)


ROUTES = [Route("GET", "/api/v1/ratelimits", ratelimits)]
