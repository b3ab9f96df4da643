"""What the admin-only resources (keys, alerts, budgets, webhooks) share: the admin check, the
JSON body, and the answer with its status."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from heliograph.analytics.filters import check_parameters
from heliograph.asgi import Request, send_error, send_json
from heliograph.errors import BadRequest, Forbidden, GatewayError, NotFound
from heliograph.types import Send

MAX_BODY_BYTES = 64 * 1024

AdminHandler = Callable[[Any, Request, Any], Awaitable[tuple[int, Any]]]


def admin_json(what: str, params: Iterable[str] = ()
               ) -> Callable[[AdminHandler], Callable[[Any, Request, Send], Awaitable[None]]]:
    """Authenticates the caller, refuses non-admin keys (403) and query parameters other
    than `params` (400), then answers fn's (status, payload) as JSON."""
    allowed = tuple(params)

    def wrap(fn: AdminHandler) -> Callable[[Any, Request, Send], Awaitable[None]]:
        @functools.wraps(fn)
        async def handler(gw: Any, request: Request, send: Send) -> None:
            try:
                principal = await gw.auth.authenticate(request.headers)
                if not principal.admin:
                    raise Forbidden(f"managing {what} needs an admin key; this key is not one")
                check_parameters(request.query, allowed)
                status, payload = await fn(gw, request, principal)
            except GatewayError as error:
                await send_error(send, error)
                return
            await send_json(send, status, payload)

        return handler

    return wrap


async def json_body(request: Request) -> Any:
    raw = await request.body(MAX_BODY_BYTES)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None


async def found(what: str, call: Callable[..., Any], gw: Any, organization: str,
                item_id: str) -> Any:
    """What `call(store, organization, item_id)` returns (a repo read or delete, run in a
    thread), or a 404 naming the item when that is nothing."""
    result = await asyncio.to_thread(call, gw.store, organization, item_id)
    if result is None or result is False:
        raise NotFound(f"no {what} {item_id!r} in this organization")
    return result
