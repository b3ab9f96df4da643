"""The request path, top to bottom:

    principal = authenticate(headers)          401 before anything reaches a provider
    options   = headers.parse(...)             a bad header value is a 400 here
    body      = read + parse JSON               413 / 400
    budgets   = budgets.check(...)              429 once an enforced budget is spent
    limits    = ratelimit.check(...)            429 over a policy
    chain     = target_url.chain(...) or routing.resolve_chain(...)
    moderation.check(...)                       Helicone-Moderations-Enabled: flagged → 400
    hit       = cache.lookup(...)               a hit is answered and logged here
    answer    = routing.send(chain, ...)        fallback chain; retries inside
    log the record (sinks, the journal first), send the last byte, then cache the answer
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import orjson

from heliograph import deep_json
from heliograph.asgi import ClientDisconnected, Request, client_gone, send_bytes
from heliograph.errors import BadRequest, GatewayError, InsufficientStorage, UpstreamError
from heliograph.formats.openai.chat import include_usage
from heliograph.providers.base import (
    CHAT,
    COUNT_TOKENS,
    EMBEDDINGS,
    Call,
    StreamReply,
)
from heliograph.providers.base import RESPONSES as RESPONSES_OPERATION
from heliograph.providers.base import RESPONSES_COMPACT as COMPACT_OPERATION
from heliograph.providers.http import HOP_BY_HOP, UPSTREAM_WAIT, UpstreamResponse
from heliograph.providers.registry import Target
from heliograph.proxy import cached, moderation, routing, target_url
from heliograph.proxy import headers as helicone_headers
from heliograph.proxy.auth import check_models
from heliograph.proxy.flow import Arrival, Flow, Receive, Send
from heliograph.proxy.front import Front, StreamReader, StreamRenderer
from heliograph.proxy.fronts import OPENAI
from heliograph.proxy.routing import Opened
from heliograph.sinks.telemetry import open_trace, traceparent

if TYPE_CHECKING:
    from heliograph.app import Gateway

log = logging.getLogger("heliograph.proxy")

# Caller headers that never go upstream: ours, credentials, and what aiohttp sets itself.
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "x-api-key", "cookie", "content-type",
                              "accept-encoding", "accept", "cache-control"}
# Which OpenAI account a call is billed to: only the caller's own key (BYOK) may be
# steered to the caller's organization/project, never the gateway's key.
ACCOUNT_HEADERS = frozenset({"openai-organization", "openai-project"})


# Far deeper than any real request, and far enough below what orjson writes (254) for
# every wrapping of the body (the record, API answers) to be written whole.
MAX_BODY_DEPTH = 128


def forward_headers(headers: dict[str, str], own_key: bool = False) -> dict[str, str]:
    """`own_key`: the call carries the caller's provider key (BYOK)."""
    forwarded = {k: v for k, v in headers.items()
                 if k not in NOT_FORWARDED and not k.startswith("helicone-")}
    if not own_key:
        for name in ACCOUNT_HEADERS:
            forwarded.pop(name, None)
    return forwarded


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


# The two hot handlers are plain functions handing back _proxy's coroutine for the caller
# to await: a frame fewer in the chain that every resume of the request's task goes through.
def chat_completions(gw: Gateway, request: Request, send: Send,
                     front: Front = OPENAI) -> Awaitable[None]:
    return _proxy(Arrival(gw, request, send, front, CHAT))


def embeddings(gw: Gateway, request: Request, send: Send) -> Awaitable[None]:
    return _proxy(Arrival(gw, request, send, OPENAI, EMBEDDINGS))


# The Anthropic and Responses fronts are imported by their first request, not with this
# module: a worker serving OpenAI-shaped traffic never loads them or their formats
# (~0.5-0.85 MB a worker; issue 15). The import is a dict lookup after the first.
async def messages(gw: Gateway, request: Request, send: Send) -> None:
    """The Anthropic Messages API in front (proxy/anthropic_front.py)."""
    from heliograph.proxy.anthropic_front import ANTHROPIC
    await _proxy(Arrival(gw, request, send, ANTHROPIC, CHAT))


async def count_tokens(gw: Gateway, request: Request, send: Send) -> None:
    """Anthropic's token counting, routed like /v1/messages (proxy/anthropic_front.py)."""
    from heliograph.proxy.anthropic_front import TOKEN_COUNT
    await _proxy(Arrival(gw, request, send, TOKEN_COUNT, COUNT_TOKENS))


async def responses(gw: Gateway, request: Request, send: Send) -> None:
    """OpenAI's Responses API, on every provider (proxy/responses.py)."""
    from heliograph.proxy.responses import RESPONSES
    await _proxy(Arrival(gw, request, send, RESPONSES, RESPONSES_OPERATION))


async def responses_compact(gw: Gateway, request: Request, send: Send) -> None:
    """`POST /v1/responses/compact` (proxy/responses.py)."""
    from heliograph.proxy.responses import COMPACT
    await _proxy(Arrival(gw, request, send, COMPACT, COMPACT_OPERATION))


async def _proxy(arrival: Arrival) -> None:
    flow = await admit(arrival)
    if flow is None or not await _read_body(flow):
        return
    await guarded(flow, _answer)


async def admit(arrival: Arrival) -> Flow | None:
    """The journal, auth, the Helicone headers, the trace and the request id: the request's
    Flow with its record open, or None when the request was already answered."""
    gw, request = arrival.gw, arrival.request
    journal = gw.journal
    if journal.failure is not None and not journal.available():
        # The record could not be kept: refuse before any provider is paid.
        await arrival.refuse(InsufficientStorage(
            f"the gateway cannot log requests right now ({journal.failure}); "
            "retry later", headers={"retry-after": "5"}))
        return None
    try:
        principal = await gw.auth.authenticate(request.headers, arrival.front.allow_x_api_key)
    except GatewayError as error:
        await arrival.refuse(error)
        return None
    try:
        options = helicone_headers.parse(request.headers)
    except GatewayError as error:
        # Opened with what can be trusted, so the 400 is logged.
        await Flow(arrival, principal, helicone_headers.RequestOptions()).fail(error)
        return None
    flow = Flow(arrival, principal, options)
    exchange = flow.exchange
    if gw.settings.otlp_endpoint:  # traced: our span's ids, the caller's trace continued
        exchange.record["trace"] = open_trace(request.headers)
    if options.request_id is not None and not await gw.request_ids.claim(
            principal.organization, options.request_id, gw.state):
        exchange.take_fresh_id()  # already used in this organization (PRODUCT.md)
    return flow


async def guarded(flow: Flow, step: Callable[[Flow], Awaitable[None]]) -> None:
    """Run the rest of the request: a gateway error is the caller's answer and is logged;
    a caller gone mid-request is logged as 499."""
    try:
        await step(flow)
    except ClientDisconnected:
        if not flow.exchange.logged:
            flow.exchange.fail(GatewayError("client disconnected", status=499))
            flow.exchange.log(499)
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


async def _read_body(flow: Flow) -> bool:
    """The caller's JSON body, parsed and translated; False when it was already answered
    (a bad body is a logged 400)."""
    gw, request, exchange = flow.gw, flow.request, flow.exchange
    try:
        raw = await request.body(gw.settings.max_body_bytes)
        try:
            flow.body = parse_body(raw)
        except GatewayError:
            exchange.set_request(raw.decode("utf-8", "replace")[:100_000])
            raise
        exchange.set_request(flow.body)
        exchange.record["model"] = require_model(flow.body)
        exchange.find_user(flow.body)
        flow.openai_body = flow.front.to_openai(flow.body)
        flow.raw = raw if flow.openai_body is flow.body else None
    except ClientDisconnected:
        return False
    except GatewayError as error:
        await flow.fail(error)
        return False
    return True


async def check_limits(flow: Flow) -> None:
    """Spend and rate before any upstream call, on every endpoint that reaches a provider:
    a 429 once an enforced budget is spent, or over a Helicone-RateLimit-Policy."""
    gw, options, record = flow.gw, flow.options, flow.exchange.record
    if flow.principal.organization in gw.budgets.enforced:
        await gw.budgets.check(flow.principal.organization, record)
    if options.ratelimit_policy:
        flow.extra_headers += await gw.ratelimits.check(flow.principal, options, record)


async def _answer(flow: Flow) -> None:
    gw, options = flow.gw, flow.options
    if options.llm_security_enabled:
        raise moderation.refuse_llm_security()
    await flow.front.prepare(flow)
    await check_limits(flow)
    models = routing.chain_models(flow.openai_body["model"], options)
    if flow.principal.allowed_models is not None:
        check_models(flow.principal, models)
    chain = target_url.chain(gw.registry, flow.request.path, options, models) \
        or routing.resolve_chain(gw.registry, models)
    if options.moderations_enabled:
        await moderation.check(gw.registry, chain[0], flow.openai_body,
                               flow.principal.provider_authorization)
    stream = flow.operation.open_stream is not None and flow.openai_body.get("stream") is True
    if options.cache_enabled:
        if await cached.serve_hit(flow, stream):
            return
    if stream:
        await _relay_stream(flow, chain)
    else:
        await _relay_json(flow, chain)


def _call_for(flow: Flow, target: Target, body: dict, raw: bytes | None) -> Call:
    if target.model != body["model"]:
        body, raw = dict(body, model=target.model), None
    own_key = flow.principal.provider_authorization is not None
    headers = forward_headers(flow.request.headers, own_key)
    trace = flow.exchange.record["trace"]
    if trace is not None:  # the provider's work joins our span's trace
        headers["traceparent"] = traceparent(trace)
    return Call(body, raw, headers, flow.principal.provider_authorization, flow.front.name,
                flow.body)


def _chain_headers(flow: Flow, answer: routing.Answer, chain_length: int) -> None:
    if chain_length > 1:
        flow.extra_headers += [(b"helicone-fallback-index", str(answer.index).encode()),
                               (b"helicone-model-used", answer.target.model.encode())]


async def _relay_json(flow: Flow, chain: list[Target]) -> None:
    exchange = flow.exchange

    async def open_attempt(target: Target) -> Opened:
        reply = await flow.operation.send(target.provider,
                                          _call_for(flow, target, flow.openai_body, flow.raw))
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
    reply: UpstreamResponse
    parsed: dict
    reply, parsed = answer.opened.payload  # type: ignore[misc]  # what open_attempt put
    _chain_headers(flow, answer, len(chain))
    # The model the provider says answered: only a string is one (a list would reach the
    # record, its headers and metrics, and fail there).
    model = parsed.get("model")
    exchange.set_usage(parsed.get("usage"),
                       model if model and isinstance(model, str) else answer.target.model)
    out, logged = flow.front.response(parsed, reply.body)
    exchange.set_response(logged)
    if client_gone(flow.request.receive):
        # Paid for but never delivered: logged as such (nginx's 499), not as a 200.
        exchange.fail(GatewayError("client disconnected before the answer was sent",
                                   status=499))
        exchange.log(499)
        _after(flow, answer, body=reply.body, events=None, parsed_usage=parsed.get("usage"))
        return
    exchange.log(reply.status)
    await flow.front.keep(flow, parsed)
    content_type = reply.headers.get("content-type", "application/json").encode("latin-1")
    await send_bytes(flow.send, reply.status, out, flow.response_headers(reply.headers),
                     content_type)
    _after(flow, answer, body=reply.body, events=None, parsed_usage=parsed.get("usage"))


def _after(flow: Flow, answer: routing.Answer, body: bytes | None, events: list[bytes] | None,
           parsed_usage: dict | None) -> None:
    """Off the critical path: rate-limit settlement and the cache write."""
    gw, options = flow.gw, flow.options
    if options.ratelimit_policy:
        gw.ratelimits.settle(flow.principal, options, flow.exchange.record)
    if options.cache_enabled and (flow.exchange.record["status"] or 0) < 400:
        cached.store_later(flow, answer, body, events, parsed_usage)


async def _relay_stream(flow: Flow, chain: list[Target]) -> None:
    """Pump upstream events to the caller while a watcher listens for the caller leaving."""
    exchange, send = flow.exchange, flow.send
    open_stream = flow.operation.open_stream
    assert open_stream is not None  # _answer streams only operations that can
    stream_body, strip_usage = flow.openai_body, False
    if flow.options.stream_usage and flow.operation is CHAT:
        if not include_usage(stream_body):
            stream_body = dict(stream_body, stream_options=dict(
                stream_body.get("stream_options") or {}, include_usage=True))
            strip_usage = True
    raw = flow.raw if stream_body is flow.body else None
    acc = flow.front.accumulator(strip_usage)
    renderer = flow.front.stream()
    ttft: float | None = None
    events: list[bytes] | None = [] if flow.options.cache_enabled else None

    async def open_attempt(target: Target) -> Opened:
        # Entered and left by hand rather than through an AsyncExitStack (every stream
        # pays for it): a failed enter leaves nothing to close.
        opening = open_stream(target.provider, _call_for(flow, target, stream_body, raw))
        reply = await opening.__aenter__()
        # The exit itself, not a coroutine wrapping it: one frame fewer on every stream.
        release = partial(opening.__aexit__, None, None, None)
        if reply.events is None and reply.status < 400:
            await release()
            raise UpstreamError(f"provider {target.provider.name!r} answered a stream "
                                f"request with status {reply.status} and no stream",
                                code="upstream_malformed")
        return Opened(reply.status, reply.headers, reply.error_body, reply, release)

    answer = await routing.send(chain, flow.options, exchange, open_attempt)
    _chain_headers(flow, answer, len(chain))
    reply: StreamReply = answer.opened.payload  # type: ignore[assignment]  # open_attempt's
    upstream_events = reply.events
    assert upstream_events is not None  # open_attempt refused a 2xx without a stream

    ending = False  # the last send is under way

    async def pump() -> None:
        nonlocal ttft, ending
        headers = flow.response_headers(reply.headers)
        headers += [(b"content-type", renderer.content_type), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            # One send per upstream read: a batch's events are rendered and written
            # together. The batch holding [DONE] is written after the log, with the end.
            process_batch, render_batch = acc.process_batch, renderer.render_batch
            async for batch in upstream_events:
                data = render_batch(process_batch(batch))
                if events is not None:
                    events.extend(batch[:batch.index(b"[DONE]")] if acc.done else batch)
                if ttft is None and acc.saw_content:
                    ttft = exchange.elapsed_ms()
                if acc.done:
                    await flow.front.keep(flow, _finish_stream(flow, acc, renderer, 200,
                                                               ttft, None))
                    ending = True
                    await send({"type": "http.response.body",
                                "body": data + renderer.finish(), "more_body": False})
                    return
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        except GatewayError as error:
            _finish_stream(flow, acc, renderer, error.status, ttft, error.message)
            ending = True
            await send({"type": "http.response.body", "body": renderer.error(error),
                        "more_body": False})
            return
        cut = UpstreamError(f"provider {answer.target.provider.name!r} ended the "
                            "stream without [DONE]", code="upstream_truncated")
        _finish_stream(flow, acc, renderer, cut.status, ttft, cut.message)
        ending = True
        await send({"type": "http.response.body", "body": renderer.error(cut),
                    "more_body": False})

    # The pump runs in this task; a watcher task listens for the caller leaving and then
    # cancels it (cheaper than two tasks and asyncio.wait on every stream). It starts the
    # first time the pump must wait for the provider (UPSTREAM_WAIT): a stream that is all
    # here already needs none. Once the end is being sent, the disconnect uvicorn reports
    # after a complete answer is no news.
    watch: asyncio.Future | None = None
    left = False

    def watch_caller() -> None:
        nonlocal watch
        if watch is not None:
            return
        # Called from the pump, in this task: which task to cancel is asked only here.
        this = asyncio.current_task()
        assert this is not None

        def caller_left(task: asyncio.Future) -> None:
            nonlocal left
            if not ending and not task.cancelled() and task.exception() is None:
                left = True
                this.cancel()

        watch = asyncio.ensure_future(_wait_disconnect(flow.request.receive))
        watch.add_done_callback(caller_left)

    waiting = UPSTREAM_WAIT.set(watch_caller)
    try:
        await pump()
        if exchange.record["status"] == 200:
            _after(flow, answer, body=None, events=events, parsed_usage=acc.usage)
    except asyncio.CancelledError:
        if not left:
            raise
        current = asyncio.current_task()
        assert current is not None
        current.uncancel()
        _finish_stream(flow, acc, renderer, 499, ttft,
                       "client disconnected before the stream finished")
    finally:
        UPSTREAM_WAIT.reset(waiting)
        if watch is not None:
            watch.cancel()
        if answer.opened.release is not None:
            await answer.opened.release()


def _finish_stream(flow: Flow, acc: StreamReader, renderer: StreamRenderer, status: int,
                   ttft: float | None, error: str | None) -> object:
    """Log the stream's record; the answer as logged (None when it was logged already)."""
    exchange = flow.exchange
    if exchange.logged:
        return None
    if status != 200 and exchange.record["attempts"]:
        # The attempt opened fine but failed mid-stream: the log says how it ended.
        exchange.record["attempts"][-1].update(status=status, error=error)
    completion = acc.completion()   # before model: the accumulator may learn it here
    exchange.set_usage(acc.usage, acc.model)
    logged = renderer.logged(completion)
    exchange.set_response(logged)
    exchange.record["error"] = error
    exchange.log(status, ttft)
    return logged


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
