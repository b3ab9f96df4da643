"""Every lazily loaded API route (see __init__.py), gathered from the modules' ROUTES:
imported on the first request under api.PREFIXES."""

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
]
