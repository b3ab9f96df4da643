"""The request path, top to bottom:

    principal = authenticate(headers)          # 401 before anything reaches a provider
    options   = headers.parse(...)             # a bad header value is a 400 here
    body      = read + parse JSON               # 413 / 400
    target    = registry.resolve(model)         # 404 unknown model / provider
    reply     = provider.chat(...)              # 502 / 504 on transport failure
    journal the record, then send the last byte
"""

from __future__ import annotations

import asyncio

import orjson

from heliograph.asgi import ClientDisconnected, Request, encode_headers, send_bytes, send_error
from heliograph.errors import BadRequest, GatewayError, ProviderStatusError, UpstreamError
from heliograph.providers.base import Call
from heliograph.providers.http import HOP_BY_HOP
from heliograph.providers.sse import frame
from heliograph.proxy import headers as helicone_headers
from heliograph.proxy.exchange import Exchange
from heliograph.proxy.streaming import StreamAccumulator

# Caller headers that never go upstream: ours, credentials, and what aiohttp sets itself.
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "x-api-key", "cookie", "content-type",
                              "accept-encoding", "accept"}
# Provider response headers relayed to the caller besides content-type.
RELAYED_PREFIXES = ("x-ratelimit-", "retry-after", "openai-", "x-request-id", "anthropic-")


def forward_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items()
            if k not in NOT_FORWARDED and not k.startswith("helicone-")}


def relayed_headers(upstream: dict[str, str], record_id: str) -> list[tuple[bytes, bytes]]:
    out = [(b"helicone-id", record_id.encode())]
    for name, value in upstream.items():
        if name.startswith(RELAYED_PREFIXES):
            out.append((name.encode("latin-1"), value.encode("latin-1")))
    return out


def parse_body(raw: bytes) -> dict:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return body


def require_model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("you must provide a model parameter (a non-empty string)",
                         code="model_required")
    return model


def user_from(body: dict, exchange: Exchange) -> None:
    rec = exchange.record
    if rec["user_id"] is None and isinstance(body.get("user"), str) and body["user"]:
        rec["user_id"] = body["user"]


async def _fail(send, exchange: Exchange, error: GatewayError) -> None:
    exchange.fail(error)
    extra = []
    if exchange.record is not None:
        exchange.log(error.status)
        extra.append((b"helicone-id", exchange.id.encode()))
    await send_error(send, error, extra)


async def _begin(gw, request: Request, send, exchange: Exchange, allow_x_api_key=False):
    """Auth, headers, body. Returns (principal, parsed body) or None when answered."""
    try:
        principal = await gw.auth.authenticate(request.headers, allow_x_api_key)
    except GatewayError as error:
        # No record: an unauthenticated caller must not be able to write to the log.
        await send_error(send, error)
        return None
    try:
        options = helicone_headers.parse(request.headers)
    except GatewayError as error:
        # The record is still opened (with what can be trusted) so the 400 is logged.
        exchange.open(principal, helicone_headers.RequestOptions())
        await _fail(send, exchange, error)
        return None
    exchange.open(principal, options)
    try:
        raw = await request.body(gw.settings.max_body_bytes)
        try:
            body = parse_body(raw)
        except GatewayError:
            exchange.set_request(raw.decode("utf-8", "replace"))
            raise
        exchange.set_request(body)
        exchange.record["model"] = require_model(body)
        user_from(body, exchange)
    except ClientDisconnected:
        return None
    except GatewayError as error:
        await _fail(send, exchange, error)
        return None
    return principal, body, raw


async def chat_completions(gw, request: Request, send) -> None:
    exchange = Exchange(gw.journal, request.path)
    begun = await _begin(gw, request, send, exchange)
    if begun is None:
        return
    principal, body, raw = begun
    try:
        target = gw.registry.resolve(body["model"])
        call_body, call_raw = body, raw
        stream = body.get("stream") is True
        strip_usage = False
        if target.model != body["model"]:
            call_body = dict(body, model=target.model)
            call_raw = None
        if stream and exchange.options.stream_usage:
            stream_options = body.get("stream_options") or {}
            if not stream_options.get("include_usage"):
                call_body = dict(call_body,
                                 stream_options=dict(stream_options, include_usage=True))
                call_raw = None
                strip_usage = True
        call = Call(call_body, call_raw, forward_headers(request.headers),
                    principal.provider_authorization)
        if stream:
            await _relay_stream(target, call, exchange, request, send, strip_usage)
        else:
            await _relay_json(target, call, exchange, send, target.provider.chat)
    except GatewayError as error:
        if not exchange.logged:
            await _fail(send, exchange, error)


async def embeddings(gw, request: Request, send) -> None:
    exchange = Exchange(gw.journal, request.path)
    begun = await _begin(gw, request, send, exchange)
    if begun is None:
        return
    principal, body, raw = begun
    try:
        target = gw.registry.resolve(body["model"])
        call_body, call_raw = body, raw
        if target.model != body["model"]:
            call_body, call_raw = dict(body, model=target.model), None
        call = Call(call_body, call_raw, forward_headers(request.headers),
                    principal.provider_authorization)
        await _relay_json(target, call, exchange, send, target.provider.embeddings)
    except GatewayError as error:
        if not exchange.logged:
            await _fail(send, exchange, error)


async def _relay_json(target, call: Call, exchange: Exchange, send, method) -> None:
    provider = target.provider
    exchange.start_attempt()
    try:
        reply = await method(call)
    except GatewayError as error:
        exchange.end_attempt(provider.name, target.model, error.status, error.message)
        raise
    if reply.status >= 400:
        message = _upstream_message(reply.body, reply.status, provider.name)
        exchange.end_attempt(provider.name, target.model, reply.status, message, reply.headers)
        exchange.set_response(_json_or_text(reply.body))
        raise ProviderStatusError(reply.status, message, reply.body,
                                  _relayable(reply.headers))
    try:
        parsed = orjson.loads(reply.body)
        if not isinstance(parsed, dict):
            raise ValueError
    except ValueError:
        error = UpstreamError(f"provider {provider.name!r} sent a malformed response "
                              "(not a JSON object)", code="upstream_malformed")
        exchange.end_attempt(provider.name, target.model, 502, error.message, reply.headers)
        exchange.set_response(reply.body.decode("utf-8", "replace")[:10_000])
        raise error from None
    exchange.end_attempt(provider.name, target.model, reply.status, None, reply.headers)
    exchange.set_usage(parsed.get("usage"), parsed.get("model") or target.model)
    exchange.set_response(parsed)
    exchange.log(reply.status)
    await send_bytes(send, reply.status, reply.body,
                     relayed_headers(reply.headers, exchange.id),
                     reply.headers.get("content-type", "application/json").encode("latin-1"))


def _relayable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith(RELAYED_PREFIXES)}


def _json_or_text(body: bytes):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")[:10_000]


def _upstream_message(body: bytes, status: int, provider: str) -> str:
    parsed = _json_or_text(body)
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if parsed.get("message"):
            return str(parsed["message"])
    text = parsed if isinstance(parsed, str) else ""
    return f"provider {provider!r} answered {status}" + (f": {text[:300]}" if text else "")


async def _relay_stream(target, call: Call, exchange: Exchange, request: Request, send,
                        strip_usage: bool) -> None:
    """Pump upstream events to the caller while a watcher listens for the caller leaving."""
    provider = target.provider
    acc = StreamAccumulator(strip_usage)
    state = {"started": False, "ttft": None}

    async def pump() -> None:
        exchange.start_attempt()
        try:
            async with provider.chat_stream(call) as reply:
                if reply.status != 200:
                    message = _upstream_message(reply.error_body, reply.status, provider.name)
                    exchange.end_attempt(provider.name, target.model, reply.status, message,
                                         reply.headers)
                    exchange.set_response(_json_or_text(reply.error_body))
                    raise ProviderStatusError(reply.status, message, reply.error_body,
                                              _relayable(reply.headers))
                exchange.end_attempt(provider.name, target.model, 200, None, reply.headers)
                headers = relayed_headers(reply.headers, exchange.id)
                headers += [(b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                state["started"] = True
                async for payload in reply.events:
                    out = acc.process(payload)
                    if out is None:
                        continue
                    if acc.done:
                        break
                    await send({"type": "http.response.body", "body": frame(out),
                                "more_body": True})
                    if state["ttft"] is None and acc.saw_content:
                        state["ttft"] = exchange.elapsed_ms()
        except GatewayError as error:
            if not state["started"]:
                if not exchange.record["attempts"]:
                    exchange.end_attempt(provider.name, target.model, error.status,
                                         error.message)
                raise
            # Headers are out: tell the caller in-band, as OpenAI does, and log the failure.
            _finish_stream(exchange, acc, error.status, state["ttft"], error.message)
            await send({"type": "http.response.body",
                        "body": frame(error.body_bytes()), "more_body": False})
            return
        if not acc.done:
            error = UpstreamError(f"provider {provider.name!r} ended the stream without "
                                  "[DONE]", code="upstream_truncated")
            _finish_stream(exchange, acc, error.status, state["ttft"], error.message)
            await send({"type": "http.response.body", "body": frame(error.body_bytes()),
                        "more_body": False})
            return
        _finish_stream(exchange, acc, 200, state["ttft"], None)
        await send({"type": "http.response.body", "body": frame(b"[DONE]"), "more_body": False})

    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(_wait_disconnect(request.receive))
    done, _ = await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
    if pump_task in done:
        watch_task.cancel()
        pump_task.result()  # re-raise a pre-header GatewayError for the caller's 4xx/5xx
        return
    pump_task.cancel()
    try:
        await pump_task
    except (asyncio.CancelledError, Exception):
        pass
    _finish_stream(exchange, acc, 499, state["ttft"],
                   "client disconnected before the stream finished")


def _finish_stream(exchange: Exchange, acc: StreamAccumulator, status: int,
                   ttft: float | None, error: str | None) -> None:
    if exchange.logged:
        return
    exchange.set_usage(acc.usage, acc.model)
    exchange.set_response(acc.completion())
    exchange.record["error"] = error
    exchange.log(status, ttft)


async def _wait_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
