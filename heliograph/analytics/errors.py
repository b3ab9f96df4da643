"""What the read side reports to an API caller beyond a bad query (BadRequest)."""

from __future__ import annotations

from heliograph.errors import GatewayError, ServiceUnavailable


class QueryTimeout(GatewayError):
    status = 504
    type = "server_error"
    code = "query_timeout"

    def __init__(self, timeout_s: float):
        super().__init__(f"the query ran longer than the {timeout_s:g} s limit "
                         "([analytics] query_timeout_s): narrow it with since/until or "
                         "fewer filters")


class DatabaseUnavailable(ServiceUnavailable):
    """The database is unreachable (an outage): a 503 the caller may retry, answered
    within the pool's short checkout wait rather than after a long hang."""

    RETRY_AFTER_S = 2

    def __init__(self, message: str):
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_S)})


class AnalyticsBusy(GatewayError):
    status = 503
    type = "server_error"
    code = "analytics_busy"
