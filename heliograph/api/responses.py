"""Stored responses, as OpenAI serves them: `GET /v1/responses/{id}`,
`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.

The gateway's own store first (store/stored_responses.py: answers it translated for
providers without a store of their own), within the caller's organization. An id it
does not hold may be OpenAI's (answered natively, kept there): the request is then
relayed and logged like files and batches (proxy/passthrough.py; the provider named by
Helicone-Target-Provider, default openai) — when there is a key to ask with, else the
gateway's 404."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from heliograph.api._common import path_param, positive_int, query_value
from heliograph.asgi import Request, send_error, send_json
from heliograph.errors import BadRequest, GatewayError, NotFound, ServiceUnavailable
from heliograph.providers.base import Call
from heliograph.proxy import passthrough
from heliograph.proxy.auth import Principal
from heliograph.proxy.models import BYOK_DEFAULT_PROVIDER, TARGET_PROVIDER_HEADER
from heliograph.routes import Route
from heliograph.store.stored_responses import StoredResponses
from heliograph.types import Send

MAX_LIMIT = 100

# (gateway, request, organization) → the answer, or None: not a response the gateway holds.
Local = Callable[[Any, Request, str], Awaitable[dict | None]]


def _handler(local: Local) -> Callable[[Any, Request, Send], Awaitable[None]]:
    async def handle(gw: Any, request: Request, send: Send) -> None:
        try:
            principal = await gw.auth.authenticate(request.headers)
            payload = await local(gw, request, principal.organization)
            if payload is None:
                if _can_ask_elsewhere(gw, request, principal):
                    await _ELSEWHERE(gw, request, send)
                    return
                raise _not_found(path_param(request, "response_id"))
        except GatewayError as error:
            await send_error(send, error)
            return
        await send_json(send, 200, payload)

    return handle


# Stored responses kept by a provider: relayed as files and batches are.
_ELSEWHERE = passthrough.handler(passthrough.Endpoint("free", "none", routed_by_model=False))


def _can_ask_elsewhere(gw: Any, request: Request, principal: Principal) -> bool:
    """Whether the provider the relay would ask keeps responses and has a key to ask
    with (the gateway's, or the caller's own)."""
    name = (request.headers.get(TARGET_PROVIDER_HEADER) or BYOK_DEFAULT_PROVIDER).strip()
    try:
        provider = gw.registry.provider(name.lower())
        provider.credential(Call({}, None, {}, principal.provider_authorization))
    except GatewayError:
        return False
    return provider.stores_responses


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id {response_id!r} not found.",
                    code="response_not_found")


def _check_query(request: Request, allowed: set[str]) -> None:
    unknown = sorted({name for name, _ in request.query} - allowed)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")


async def _run(gw: Any, operation: str, *args: str) -> Any:
    """A StoredResponses call in a worker thread; the database out is a 503, not a 500."""
    store = StoredResponses(gw.store)
    try:
        return await asyncio.to_thread(getattr(store, operation), *args)
    except store.outage_errors() as exc:
        raise ServiceUnavailable(f"stored responses cannot be read right now ({exc}); "
                                 "retry later", headers={"retry-after": "5"}) from None


async def _get(gw: Any, request: Request, org: str) -> dict | None:
    _check_query(request, {"include", "include[]", "stream"})
    if query_value(request.query, "stream", "false") != "false":
        raise BadRequest("stream=true is not supported for stored responses (stream)")
    found = await _run(gw, "get", org, path_param(request, "response_id"))
    return found.response if found is not None else None


async def _delete(gw: Any, request: Request, org: str) -> dict | None:
    _check_query(request, set())
    response_id = path_param(request, "response_id")
    if not await _run(gw, "delete", org, response_id):
        return None
    return {"id": response_id, "object": "response", "deleted": True}


async def _input_items(gw: Any, request: Request, org: str) -> dict | None:
    """OpenAI's cursor page: newest first unless order=asc, `after` an item id."""
    _check_query(request, {"after", "limit", "order", "include", "include[]"})
    limit = min(positive_int(request.query, "limit", 20), MAX_LIMIT)
    order = query_value(request.query, "order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be 'asc' or 'desc', got {order!r}")
    found = await _run(gw, "get", org, path_param(request, "response_id"))
    if found is None:
        return None
    items = found.input_items[::-1] if order == "desc" else found.input_items
    after = query_value(request.query, "after")
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > limit}


ROUTES = [
    *(Route(method, prefix + "/responses/{response_id}", _handler(local))
      for prefix in ("/v1", "") for method, local in (("GET", _get), ("DELETE", _delete))),
    *(Route("GET", prefix + "/responses/{response_id}/input_items", _handler(_input_items))
      for prefix in ("/v1", "")),
]
