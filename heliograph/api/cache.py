"""GET /api/v1/cache/entries: the most-hit response-cache entries over the filters (the
dashboard's Cache page lists the same), each with its hits, money and time saved, model,
prompt preview, first and last hit, and the request that filled it."""

from __future__ import annotations

from typing import Any

from heliograph.analytics import cache_entries
from heliograph.analytics.filters import parse_filter
from heliograph.api._common import endpoint, positive_int
from heliograph.asgi import Request
from heliograph.routes import Route


@endpoint
async def list_entries(gw: Any, request: Request, org: str) -> dict:
    flt = parse_filter(request.query, ("limit",))
    limit = min(positive_int(request.query, "limit", cache_entries.DEFAULT_LIMIT),
                cache_entries.MAX_LIMIT)
    return {"data": await gw.analytics.run(cache_entries.cache_entries, gw.analytics, org,
                                           flt, limit)}


ROUTES = [Route("GET", "/api/v1/cache/entries", list_entries)]
