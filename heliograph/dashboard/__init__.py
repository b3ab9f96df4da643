"""The web dashboard, mounted at /dashboard (see app.py)."""

from __future__ import annotations

from typing import Any

from heliograph.routes import Mount
from heliograph.types import Receive, Scope, Send


class LazyDashboard:
    """The dashboard's ASGI app, built on its first request: Jinja2, the templates and the
    pages (~2 MB a worker) are not on the proxy's path, and a worker that never serves a
    page never loads them. The session secret is resolved at startup as before, so every
    worker agrees on it (and a broken journal folder fails the start, not a page)."""

    def __init__(self, gw: Any):
        from heliograph.dashboard.secret import resolve_secret

        resolve_secret(gw.settings.dashboard_session_secret, gw.settings.resolved_journal_dir())
        self.gw = gw
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            from heliograph.dashboard.app import DashboardApp

            self.app = DashboardApp(self.gw)
        await self.app(scope, receive, send)


def mounts(gw: Any) -> list[Mount]:
    """The dashboard's mount, when [dashboard] enabled (it is by default)."""
    if not gw.settings.dashboard_enabled:
        return []
    return [Mount("/dashboard", LazyDashboard(gw))]
