"""What the read side reports to an API caller beyond a bad query (BadRequest)."""

from __future__ import annotations

from heliograph.errors import GatewayError


class QueryTimeout(GatewayError):
    status = 504
    type = "server_error"
    code = "query_timeout"

    def __init__(self, timeout_s: float):
        super().__init__(f"the query ran longer than the {timeout_s:g} s limit "
                         "([analytics] query_timeout_s): narrow it with since/until or "
                         "fewer filters")


class DatabaseUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "database_unavailable"


class AnalyticsBusy(GatewayError):
    status = 503
    type = "server_error"
    code = "analytics_busy"
