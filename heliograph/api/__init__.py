"""The query API (/api/v1/*), the Helicone-compatible query and feedback endpoints and the
custom log endpoints: JSON over the analytics read side, scoped to the caller's
organization. One module per resource; each declares its ROUTES, gathered in table.py.

None of it is on the proxy's path, so a worker imports it on the first request under one
of PREFIXES (routes.LazyRoutes): a worker serving only proxy traffic never loads the
analytics code (bench/footprint.py). Stored responses (/v1/responses/{id}, responses.py)
belong to the OpenAI surface and stay loaded."""

from __future__ import annotations

from heliograph.routes import LazyRoutes, Route

# Every path table.ROUTES declares starts with one of these (checked when it loads).
PREFIXES = ("/api/v1", "/v1/request", "/v1/session", "/v1/user",
            "/custom/v1/log", "/oai/v1/log", "/anthropic/v1/log", "/googleapis/v1/log")


def _load() -> list[Route]:
    from heliograph.api.table import ROUTES

    return ROUTES


def lazy_routes() -> LazyRoutes:
    return LazyRoutes(PREFIXES, _load)


def eager_routes() -> list[Route]:
    """The routes loaded at startup (the OpenAI-shaped stored-response endpoints)."""
    from heliograph.api import responses

    return responses.ROUTES
