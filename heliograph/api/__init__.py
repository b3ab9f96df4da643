"""The query API (/api/v1/*): JSON over the analytics read side, scoped to the caller's
organization. One module per resource; each declares its ROUTES, gathered here for the
route table app.py builds."""

from __future__ import annotations

from heliograph.api import (
    feedback,
    helicone,
    ingest,
    keys,
    metrics,
    ratelimits,
    requests,
    sessions,
    users,
)
from heliograph.routes import Route

ROUTES: list[Route] = [
    *requests.ROUTES,
    *metrics.ROUTES,
    *users.ROUTES,
    *sessions.ROUTES,
    *ratelimits.ROUTES,
    *feedback.ROUTES,
    *keys.ROUTES,
    *ingest.ROUTES,
    *helicone.ROUTES,
]
