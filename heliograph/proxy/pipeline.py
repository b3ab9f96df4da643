"""The request path, top to bottom:

    principal = authenticate(headers)          401 before anything reaches a provider
    options   = headers.parse(...)             a bad header value is a 400 here
    body      = read + parse JSON               413 / 400
    limits    = ratelimit.check(...)            429 over a policy
    hit       = cache.lookup(...)               a hit is answered and logged here
    answer    = routing.send(chain, ...)        fallback chain; retries inside
    journal the record, send the last byte, store the answer in the cache afterwards
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson

from heliograph import deep_json
from heliograph.asgi import ClientDisconnected, Request, encode_headers, send_bytes
from heliograph.errors import BadRequest, GatewayError, InsufficientStorage, UpstreamError
from heliograph.providers._openai_shapes import include_usage
from heliograph.providers.base import Call
from heliograph.providers.http import HOP_BY_HOP
from heliograph.proxy import cached, routing
from heliograph.proxy import headers as helicone_headers
from heliograph.proxy.anthropic_front import ANTHROPIC, TOKEN_COUNT
from heliograph.proxy.exchange import Exchange, fast_uuid4
from heliograph.proxy.fronts import OPENAI
from heliograph.proxy.responses import RESPONSES
from heliograph.proxy.routing import Opened, relayable
from heliograph.proxy.streaming import StreamAccumulator

log = logging.getLogger("heliograph.proxy")

# Caller headers that never go upstream: ours, credentials, and what aiohttp sets itself.
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "x-api-key", "cookie", "content-type",
                              "accept-encoding", "accept", "cache-control"}


# Far deeper than any real request, and far enough below what orjson writes (254) for
# every wrapping of the body (the record, API answers) to be written whole.
MAX_BODY_DEPTH = 128


def forward_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items()
            if k not in NOT_FORWARDED and not k.startswith("helicone-")}


def parse_body(raw: bytes) -> dict:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    # Counting brackets is cheap and bounds the depth: only a body with many containers
    # pays for the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_BODY_DEPTH and \
            deep_json.deeper_than(body, MAX_BODY_DEPTH):
        raise BadRequest(f"request body is nested deeper than {MAX_BODY_DEPTH} levels",
                         code="invalid_json")
    return body


def require_model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("you must provide a model parameter (a non-empty string)",
                         code="model_required")
    return model


class Flow:
    """One proxied request: what every step needs, in one place."""

    def __init__(self, gw, request: Request, send, front, kind: str):
        self.gw = gw
        self.request = request
        self.send = send
        self.front = front
        self.kind = kind  # the provider method: chat|embeddings|responses|count_tokens
        self.exchange = Exchange(gw.journal, request.path)
        self.principal = None
        self.body: dict = {}        # as the caller sent it
        self.openai_body: dict = {}
        self.raw: bytes | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []

    @property
    def options(self):
        return self.exchange.options

    def response_headers(self, upstream: dict[str, str]) -> list[tuple[bytes, bytes]]:
        out = [(b"helicone-id", self.exchange.id.encode())]
        out += encode_headers(relayable(upstream))
        out += self.extra_headers
        return out

    async def fail(self, error: GatewayError) -> None:
        exchange = self.exchange
        exchange.fail(error)
        headers = encode_headers(error.headers)
        if exchange.record is not None:
            exchange.log(error.status)
            headers.append((b"helicone-id", exchange.id.encode()))
        headers += self.extra_headers
        await send_bytes(self.send, error.status, self.front.error_body(error), headers)


async def chat_completions(gw, request: Request, send, front=OPENAI) -> None:
    await _proxy(Flow(gw, request, send, front, "chat"))


async def embeddings(gw, request: Request, send) -> None:
    await _proxy(Flow(gw, request, send, OPENAI, "embeddings"))


async def messages(gw, request: Request, send) -> None:
    """The Anthropic Messages API in front (proxy/anthropic_front.py)."""
    await _proxy(Flow(gw, request, send, ANTHROPIC, "chat"))


async def count_tokens(gw, request: Request, send) -> None:
    """Anthropic's token counting, routed like /v1/messages (proxy/anthropic_front.py)."""
    await _proxy(Flow(gw, request, send, TOKEN_COUNT, "count_tokens"))


async def responses(gw, request: Request, send) -> None:
    """OpenAI's Responses API, passed through (proxy/responses.py)."""
    await _proxy(Flow(gw, request, send, RESPONSES, "responses"))


async def _proxy(flow: Flow) -> None:
    journal = flow.gw.journal
    if journal.failure is not None and not journal.available():
        # The record could not be kept: refuse before any provider is paid.
        await flow.fail(InsufficientStorage(
            f"the gateway cannot log requests right now ({journal.failure}); "
            "retry later", headers={"retry-after": "5"}))
        return
    if not await _begin(flow):
        return
    try:
        await _answer(flow)
    except GatewayError as error:
        if not flow.exchange.logged:
            await flow.fail(error)
    except Exception:
        # A bug of ours: the caller still gets an OpenAI-shaped 500 and the request is
        # still logged; the traceback goes to the server log, not to the caller.
        log.exception("internal error while proxying %s", flow.request.path)
        if not flow.exchange.logged:
            with contextlib.suppress(Exception):  # the answer may already be under way
                await flow.fail(GatewayError("internal gateway error; the request was "
                                             "logged with its id"))


async def _begin(flow: Flow) -> bool:
    """Auth, headers, body. False when the request was already answered."""
    gw, request, exchange = flow.gw, flow.request, flow.exchange
    try:
        flow.principal = await gw.auth.authenticate(request.headers, flow.front.allow_x_api_key)
    except GatewayError as error:
        # No record: an unauthenticated caller must not be able to write to the log.
        await flow.fail(error)
        return False
    try:
        options = helicone_headers.parse(request.headers)
    except GatewayError as error:
        # Opened with what can be trusted, so the 400 is logged.
        exchange.open(flow.principal, helicone_headers.RequestOptions())
        await flow.fail(error)
        return False
    exchange.open(flow.principal, options)
    if options.request_id is not None and not await gw.request_ids.claim(
            flow.principal.organization, options.request_id):
        exchange.record["id"] = fast_uuid4()  # already used: a fresh one (PRODUCT.md)
    try:
        raw = await request.body(gw.settings.max_body_bytes)
        try:
            flow.body = parse_body(raw)
        except GatewayError:
            exchange.set_request(raw.decode("utf-8", "replace")[:100_000])
            raise
        exchange.set_request(flow.body)
        exchange.record["model"] = require_model(flow.body)
        user = flow.body.get("user")
        if exchange.record["user_id"] is None and isinstance(user, str) and user:
            exchange.record["user_id"] = user
        flow.openai_body = flow.front.to_openai(flow.body)
        flow.raw = raw if flow.openai_body is flow.body else None
    except ClientDisconnected:
        return False
    except GatewayError as error:
        await flow.fail(error)
        return False
    return True


async def _answer(flow: Flow) -> None:
    gw, options, exchange = flow.gw, flow.options, flow.exchange
    if gw.ratelimits is not None and options.ratelimit_policy:
        flow.extra_headers += await gw.ratelimits.check(flow.principal, options, exchange.record)
    models = routing.chain_models(flow.openai_body["model"], options)
    chain = routing.resolve_chain(gw.registry, models)
    stream = flow.kind != "embeddings" and flow.openai_body.get("stream") is True
    if gw.cache is not None and options.cache_enabled:
        if await cached.serve_hit(flow, stream):
            return
    if stream:
        await _relay_stream(flow, chain)
    else:
        await _relay_json(flow, chain)


def _call_for(flow: Flow, target, body: dict, raw: bytes | None) -> Call:
    if target.model != body["model"]:
        body, raw = dict(body, model=target.model), None
    return Call(body, raw, forward_headers(flow.request.headers),
                flow.principal.provider_authorization, flow.front.name, flow.body)


def _chain_headers(flow: Flow, answer: routing.Answer, chain_length: int) -> None:
    if chain_length > 1:
        flow.extra_headers += [(b"helicone-fallback-index", str(answer.index).encode()),
                               (b"helicone-model-used", answer.target.model.encode())]


async def _relay_json(flow: Flow, chain) -> None:
    exchange = flow.exchange

    async def open_attempt(target) -> Opened:
        method = getattr(target.provider, flow.kind)
        reply = await method(_call_for(flow, target, flow.openai_body, flow.raw))
        if reply.status >= 400:
            return Opened(reply.status, reply.headers, reply.body, None)
        try:
            parsed = orjson.loads(reply.body)
            if not isinstance(parsed, dict):
                raise ValueError
        except ValueError:
            exchange.set_response(reply.body.decode("utf-8", "replace")[:10_000])
            raise UpstreamError(f"provider {target.provider.name!r} sent a malformed "
                                "response (not a JSON object)",
                                code="upstream_malformed") from None
        return Opened(reply.status, reply.headers, b"", (reply, parsed))

    answer = await routing.send(chain, flow.options, exchange, open_attempt)
    reply, parsed = answer.opened.payload
    _chain_headers(flow, answer, len(chain))
    exchange.set_usage(parsed.get("usage"), parsed.get("model") or answer.target.model)
    out, logged = flow.front.response(parsed, reply.body)
    exchange.set_response(logged)
    exchange.log(reply.status)
    content_type = reply.headers.get("content-type", "application/json").encode("latin-1")
    await send_bytes(flow.send, reply.status, out, flow.response_headers(reply.headers),
                     content_type)
    _after(flow, answer, body=reply.body, events=None, parsed_usage=parsed.get("usage"))


def _after(flow: Flow, answer: routing.Answer, body, events, parsed_usage) -> None:
    """Off the critical path: rate-limit settlement and the cache write."""
    gw, options = flow.gw, flow.options
    if gw.ratelimits is not None and options.ratelimit_policy:
        gw.ratelimits.settle(flow.principal, options, flow.exchange.record)
    if gw.cache is not None and options.cache_enabled and flow.exchange.record["status"] < 400:
        cached.store_later(flow, answer, body, events, parsed_usage)


async def _relay_stream(flow: Flow, chain) -> None:
    """Pump upstream events to the caller while a watcher listens for the caller leaving."""
    exchange, send = flow.exchange, flow.send
    stream_body, strip_usage = flow.openai_body, False
    if flow.options.stream_usage and flow.kind == "chat":
        if not include_usage(stream_body):
            stream_body = dict(stream_body, stream_options=dict(
                stream_body.get("stream_options") or {}, include_usage=True))
            strip_usage = True
    raw = flow.raw if stream_body is flow.body else None
    acc = flow.front.accumulator(strip_usage)
    renderer = flow.front.stream()
    state = {"ttft": None, "events": [] if flow.options.cache_enabled else None}

    async def open_attempt(target) -> Opened:
        stack = contextlib.AsyncExitStack()
        try:
            reply = await stack.enter_async_context(
                getattr(target.provider, flow.kind + "_stream")(
                    _call_for(flow, target, stream_body, raw)))
        except BaseException:
            await stack.aclose()
            raise
        if reply.events is None and reply.status < 400:
            await stack.aclose()
            raise UpstreamError(f"provider {target.provider.name!r} answered a stream "
                                f"request with status {reply.status} and no stream",
                                code="upstream_malformed")
        return Opened(reply.status, reply.headers, reply.error_body, reply, stack.aclose)

    answer = await routing.send(chain, flow.options, exchange, open_attempt)
    _chain_headers(flow, answer, len(chain))
    reply = answer.opened.payload

    async def pump() -> None:
        headers = flow.response_headers(reply.headers)
        headers += [(b"content-type", renderer.content_type), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async for payload in reply.events:
                out = acc.process(payload)
                if acc.done:
                    break
                if state["events"] is not None:
                    state["events"].append(payload)
                if out is None:
                    continue
                data = renderer.render(out)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                if state["ttft"] is None and acc.saw_content:
                    state["ttft"] = exchange.elapsed_ms()
        except GatewayError as error:
            _finish_stream(flow, acc, renderer, error.status, state["ttft"], error.message)
            await send({"type": "http.response.body", "body": renderer.error(error),
                        "more_body": False})
            return
        if not acc.done:
            error = UpstreamError(f"provider {answer.target.provider.name!r} ended the "
                                  "stream without [DONE]", code="upstream_truncated")
            _finish_stream(flow, acc, renderer, error.status, state["ttft"], error.message)
            await send({"type": "http.response.body", "body": renderer.error(error),
                        "more_body": False})
            return
        _finish_stream(flow, acc, renderer, 200, state["ttft"], None)
        await send({"type": "http.response.body", "body": renderer.finish(),
                    "more_body": False})

    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(_wait_disconnect(flow.request.receive))
    try:
        done, _ = await asyncio.wait({pump_task, watch_task},
                                     return_when=asyncio.FIRST_COMPLETED)
        if pump_task in done:
            watch_task.cancel()
            pump_task.result()
            if exchange.record["status"] == 200:
                _after(flow, answer, body=None, events=state["events"], parsed_usage=acc.usage)
            return
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump_task
        _finish_stream(flow, acc, renderer, 499, state["ttft"],
                       "client disconnected before the stream finished")
    finally:
        await answer.opened.release()


def _finish_stream(flow: Flow, acc: StreamAccumulator, renderer, status: int,
                   ttft: float | None, error: str | None) -> None:
    exchange = flow.exchange
    if exchange.logged:
        return
    if status != 200 and exchange.record["attempts"]:
        # The attempt opened fine but failed mid-stream: the log says how it ended.
        exchange.record["attempts"][-1].update(status=status, error=error)
    exchange.set_usage(acc.usage, acc.model)
    exchange.set_response(renderer.logged(acc.completion()))
    exchange.record["error"] = error
    exchange.log(status, ttft)


async def _wait_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
