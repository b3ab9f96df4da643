"""One exception tree for everything the gateway reports to a caller.

GatewayError
 ├─ BadRequest (400)            invalid JSON, bad header value, missing model
 ├─ Unauthorized (401)          missing or unknown gateway key
 ├─ NotFound (404)              unknown model / provider / record
 ├─ MethodNotAllowed (405)
 ├─ PayloadTooLarge (413)
 ├─ RateLimited (429)
 │   └─ BudgetExceeded (429)    an enforced budget's spend reached its limit
 ├─ ServiceUnavailable (503)    the key store is unreachable and the key was never seen
 ├─ InsufficientStorage (507)   the journal cannot write: refused before the provider
 ├─ UpstreamError (502)         provider refused, reset or sent something unreadable
 │   └─ UpstreamTimeout (504)
 └─ ProviderStatusError (any)   the provider answered with an error status; passed through

Foreign exceptions (aiohttp, json, sqlite) are translated where they are raised,
so the pipeline only ever handles these.
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": None,
                          "code": self.code}}

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class BudgetExceeded(RateLimited):
    type = "budget_exceeded"
    code = "budget_exceeded"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class InsufficientStorage(GatewayError):
    status = 507
    type = "server_error"
    code = "insufficient_storage"


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"
    code = "bad_gateway"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ProviderStatusError(GatewayError):
    """The provider answered with an error status; its body is relayed as-is when it is JSON."""

    type = "upstream_error"
    code = "provider_error"

    def __init__(self, status: int, message: str, raw_body: bytes | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message, status=status, headers=headers)
        self.raw_body = raw_body

    def body_bytes(self) -> bytes:
        if self.raw_body:
            try:
                parsed = orjson.loads(self.raw_body)
            except orjson.JSONDecodeError:
                parsed = None
            error = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(error, dict):
                if "type" in error and "code" in error and isinstance(error.get("message"),
                                                                      str):
                    return self.raw_body
                # OpenAI's SDKs read type and code: an error without them is made whole.
                whole = {"message": self.message, "type": self.type, "param": None,
                         "code": self.code, **{k: v for k, v in error.items()
                                               if v is not None}}
                return orjson.dumps(dict(parsed, error=whole))
        return orjson.dumps(self.body())
