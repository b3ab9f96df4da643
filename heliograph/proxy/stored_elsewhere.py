"""Stored responses the gateway does not hold may be OpenAI's own (answered natively, and
kept there): `GET`/`DELETE /v1/responses/{id}` and its input items are then asked of the
`openai` provider — with the gateway's key or the caller's own (BYOK) — relayed as they
come, and logged like any call that reaches a provider (free: cost 0).

Without an OpenAI key there is nobody to ask, and the caller gets the gateway's 404.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from heliograph.asgi import Request, encode_headers, send_bytes
from heliograph.errors import GatewayError
from heliograph.providers.base import Call
from heliograph.proxy import headers as helicone_headers
from heliograph.proxy.auth import Principal
from heliograph.proxy.exchange import Exchange
from heliograph.proxy.routing import json_or_text, relayable, upstream_message
from heliograph.types import Send

if TYPE_CHECKING:
    from heliograph.app import Gateway

PROVIDER = "openai"


async def forward(gw: Gateway, request: Request, principal: Principal, send: Send) -> bool:
    """True when the provider was asked and its answer sent; False when there is no
    provider to ask."""
    try:
        provider = gw.registry.provider(PROVIDER)
        call = Call({}, None, {}, principal.provider_authorization)
        provider.credential(call)  # no key at all: nobody to ask
    except GatewayError:  # not configured, or no key
        return False
    if not provider.stores_responses:
        return False
    options = helicone_headers.parse(request.headers)  # a bad header value: the 400
    exchange = Exchange(gw.sinks, request.path, principal, options, time.perf_counter(),
                        time.time())
    exchange.record["cost_usd"], exchange.record["cost_known"] = 0.0, True  # reads are free
    path = request.path.split("/responses", 1)[1]
    query = request.scope.get("query_string", b"").decode("latin-1")
    exchange.start_attempt()
    try:
        reply = await provider.stored_response(call, request.method,
                                               path + (f"?{query}" if query else ""))
    except GatewayError as error:
        exchange.end_attempt(provider.name, "", error.status, error.message)
        exchange.fail(error)
        exchange.log(error.status)
        await send_bytes(send, error.status, error.body_bytes(),
                         [(b"helicone-id", exchange.id.encode())])
        return True
    failed = upstream_message(reply.body, reply.status, provider.name) \
        if reply.status >= 400 else None
    exchange.end_attempt(provider.name, "", reply.status, failed, reply.headers)
    exchange.record["error"] = failed
    exchange.record["model_used"] = None  # no model answers a read
    exchange.set_response(json_or_text(reply.body))
    exchange.log(reply.status)
    headers = [(b"helicone-id", exchange.id.encode())] + encode_headers(relayable(reply.headers))
    content_type = reply.headers.get("content-type", "application/json").encode("latin-1")
    await send_bytes(send, reply.status, reply.body, headers, content_type)
    return True
