"""What every query-API endpoint shares: the caller's key, the JSON answer, query values.

An endpoint is `async def name(gw, request, org) -> payload`, wrapped by @endpoint, which
authenticates the caller (the organization scopes every read), refuses NUL characters,
and turns the payload into a 200 JSON answer or a GatewayError into an OpenAI-shaped one.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from heliograph.api._recent import once_stored
from heliograph.asgi import Request, is_whole_number, send_error, send_json
from heliograph.errors import BadRequest, GatewayError, NotFound
from heliograph.types import Send

Endpoint = Callable[[Any, Request, str], Awaitable[Any]]


def endpoint(fn: Endpoint) -> Callable[[Any, Request, Send], Awaitable[None]]:
    @functools.wraps(fn)
    async def handler(gw: Any, request: Request, send: Send) -> None:
        try:
            principal = await gw.auth.authenticate(request.headers)
            refuse_nul(request)
            payload = await fn(gw, request, principal.organization)
        except GatewayError as error:
            await send_error(send, error)
            return
        await send_json(send, 200, payload)

    return handler


def refuse_nul(request: Request) -> None:
    # No stored text holds a NUL (PostgreSQL refuses them), so none can match; say so
    # rather than let the database fail on it.
    if "\x00" in request.path or any("\x00" in name or "\x00" in value
                                     for name, value in request.query):
        raise BadRequest("NUL characters are not allowed in the path or query")


def path_param(request: Request, name: str) -> str:
    """A path parameter of the matched route (routes.RouteTable put them in the scope)."""
    return request.scope["path_params"][name]


def query_value(query: list[tuple[str, str]], name: str, default: str | None = None
                ) -> str | None:
    for key, value in query:
        if key == name:
            return value
    return default


def positive_int(query: list[tuple[str, str]], name: str, default: int) -> int:
    value = query_value(query, name)
    if value is None:
        return default
    if not is_whole_number(value) or int(value) < 1:
        raise BadRequest(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def boolean(query: list[tuple[str, str]], name: str) -> bool:
    value = query_value(query, name, "false")
    if value not in ("true", "false"):
        raise BadRequest(f"{name} must be 'true' or 'false', got {value!r}")
    return value == "true"


async def read_one(gw: Any, request: Request, org: str, read: Callable[..., Any],
                   param: str, missing: str, journaled: bool = False) -> Any:
    """One item addressed by a path parameter through the read side, or a 404 saying
    `missing` and the id. The query string takes no parameters here. `journaled`: the
    item is a record, which may still be on its way from the journal (api/_recent.py)."""
    # Here rather than at the top: responses.py (loaded in every worker) uses this module
    # too, and the analytics package is for the lazily loaded query API only.
    from heliograph.analytics.filters import check_parameters

    check_parameters(request.query)
    value = path_param(request, param)
    if journaled:
        found = await once_stored(gw.journal.directory, value,
                                  lambda: gw.analytics.run(read, org, value))
    else:
        found = await gw.analytics.run(read, org, value)
    if found is None:
        raise NotFound(f"{missing} {value!r}")
    return found
