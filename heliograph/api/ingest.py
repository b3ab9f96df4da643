"""POST /custom/v1/log, /oai/v1/log, /anthropic/v1/log, /googleapis/v1/log: a call made
elsewhere, logged in Helicone's manual-logger format (formats/helicone/log.py), as
Helicone's helper SDKs send it.

Authenticated like the proxy (`Authorization: Bearer <gateway key>`, as the SDKs send
their Helicone key), and logged like a proxied request: the same record, opened by the
same Exchange and handed to the same sinks (the journal first, so it is as durable),
priced by costs.price_usage at the call's start time. Helicone-* headers (also given in
providerRequest.meta) tag it with user, properties and session as on the proxy.
"""

from __future__ import annotations

import time
from typing import Any

from heliograph import costs
from heliograph.asgi import Request, send_error, send_json
from heliograph.errors import GatewayError, InsufficientStorage
from heliograph.formats.helicone.log import LoggedCall, parse_log
from heliograph.proxy import headers as helicone_headers
from heliograph.proxy.exchange import Exchange
from heliograph.proxy.pipeline import parse_body
from heliograph.routes import Route
from heliograph.sinks.telemetry import open_trace
from heliograph.types import Send

# The provider each native path logs for; /custom/v1/log takes the body's `provider`,
# else the provider that would serve the model here.
PATH_PROVIDERS = {"/custom/v1/log": None, "/oai/v1/log": "openai",
                  "/anthropic/v1/log": "anthropic", "/googleapis/v1/log": "gemini"}
# Helicone's provider names for ours.
PROVIDER_NAMES = {"google": "gemini", "oai": "openai", "x": "xai"}


async def log_call(gw: Any, request: Request, send: Send) -> None:
    journal = gw.journal
    try:
        if journal.failure is not None and not journal.available():
            raise InsufficientStorage(f"the gateway cannot log requests right now "
                                      f"({journal.failure}); retry later",
                                      headers={"retry-after": "5"})
        principal = await gw.auth.authenticate(request.headers)
        call = parse_log(parse_body(await request.body(gw.settings.max_body_bytes)))
        # meta holds Helicone headers too (Helicone reads it so); the request's win.
        tags = {name: value for name, value in call.meta.items()
                if name.startswith("helicone-")}
        options = helicone_headers.parse({**tags, **request.headers})
    except GatewayError as error:
        await send_error(send, error)
        return
    exchange = Exchange(gw.sinks, request.path, principal, options, time.perf_counter(),
                        call.start_ts)
    if gw.settings.otlp_endpoint:  # traced as a proxied call is, in the caller's trace
        exchange.record["trace"] = open_trace(request.headers)
    if options.request_id is not None and not await gw.request_ids.claim(
            principal.organization, options.request_id, gw.state):
        exchange.take_fresh_id()  # already used: a fresh id, no record dropped
    _fill(gw, exchange, call, PATH_PROVIDERS[request.path])
    exchange.log(call.status, call.ttft_ms, call.latency_ms)
    await send_json(send, 200, {"id": exchange.id}, [(b"helicone-id", exchange.id.encode())])


def _fill(gw: Any, exchange: Exchange, call: LoggedCall, path_provider: str | None) -> None:
    rec = exchange.record
    exchange.set_request(call.request)
    exchange.set_response(call.response)
    rec["model"] = call.model
    rec["error"] = call.error
    exchange.find_user(call.request)  # the header, the body's user, a UserId property
    if call.span is not None:
        # A tool call or a retrieval step: no tokens, and no LLM spend to price.
        rec["cost_usd"], rec["cost_known"] = 0.0, True
        return
    provider = path_provider or PROVIDER_NAMES.get(call.provider or "", call.provider)
    if provider is None and call.model:
        provider = _serving_provider(gw, call.model)
    rec["provider"] = provider
    rec["model_used"] = call.model_used or call.model
    if call.usage is None:
        rec["cost_known"] = False  # no usage reported: unknown, never a silent 0
        return
    rec.update(costs.price_usage(provider or "", rec["model_used"] or "", call.usage,
                                 call.start_ts))


def _serving_provider(gw: Any, model: str) -> str | None:
    try:
        return gw.registry.resolve(model).provider.name
    except GatewayError:  # not served here (or no key): priced by the model name alone
        return None


ROUTES = [Route("POST", path, log_call) for path in PATH_PROVIDERS]
