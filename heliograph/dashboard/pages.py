"""The dashboard's route table (paths below its /dashboard mount)."""

from __future__ import annotations

from heliograph.dashboard import admin, explore, reports, signin
from heliograph.routes import Route


def routes() -> list[Route]:
    return [
        Route("GET", "/", reports.overview),
        Route("GET", "/login", signin.login),
        Route("POST", "/login", signin.login_submit),
        Route("POST", "/logout", signin.logout),
        Route("GET", "/static/{name}", signin.static),
        Route("GET", "/requests", explore.requests),
        Route("GET", "/requests/{request_id}/json", explore.request_json),
        Route("GET", "/requests/{request_id}", explore.request),
        Route("GET", "/sessions", explore.sessions),
        Route("GET", "/sessions/{session_id:path}", explore.session),
        Route("GET", "/users", reports.users),
        Route("GET", "/users/{user_id:path}", reports.user),
        Route("GET", "/properties", reports.properties),
        Route("GET", "/cache", reports.cache),
        Route("GET", "/ratelimits", reports.ratelimits),
        Route("GET", "/keys", admin.keys),
        Route("POST", "/keys", admin.create_key),
        Route("POST", "/keys/{key_id}/revoke", admin.revoke_key),
        Route("GET", "/alerts", admin.alerts),
        Route("GET", "/budgets", admin.budgets),
    ]
