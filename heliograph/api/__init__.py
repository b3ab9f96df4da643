"""The query API (/api/v1/*): JSON over the analytics read side, scoped to the caller's
organization. One module per resource; each declares its ROUTES, gathered here for the
route table app.py builds."""

from __future__ import annotations

from heliograph.api import (
    alerts,
    budgets,
    cache,
    feedback,
    helicone,
    ingest,
    keys,
    metrics,
    overview,
    properties,
    ratelimits,
    requests,
    responses,
    sessions,
    users,
    webhooks,
)
from heliograph.routes import Route

ROUTES: list[Route] = [
    *requests.ROUTES,
    *metrics.ROUTES,
    *users.ROUTES,
    *sessions.ROUTES,
    *properties.ROUTES,
    *overview.ROUTES,
    *cache.ROUTES,
    *ratelimits.ROUTES,
    *feedback.ROUTES,
    *keys.ROUTES,
    *ingest.ROUTES,
    *helicone.ROUTES,
    *alerts.ROUTES,
    *budgets.ROUTES,
    *webhooks.ROUTES,
    *responses.ROUTES,
]
