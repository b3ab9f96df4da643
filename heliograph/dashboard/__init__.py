"""The web dashboard, mounted at /dashboard (see app.py)."""

from __future__ import annotations

from typing import Any

from heliograph.routes import Mount


def mounts(gw: Any) -> list[Mount]:
    """The dashboard's mount, when [dashboard] enabled (it is by default)."""
    if not gw.settings.dashboard_enabled:
        return []
    from heliograph.dashboard.app import DashboardApp

    return [Mount("/dashboard", DashboardApp(gw))]
