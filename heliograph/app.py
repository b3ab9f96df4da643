"""build_app(settings): wires the upstream client, the store, the journal (and keeps the
background host that writes it running), and routes requests. State lives on one Gateway
object, never in module globals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from heliograph import api, dashboard
from heliograph.alerts.budgets import Budgets
from heliograph.asgi import (
    ClientDisconnected,
    Request,
    encode_headers,
    refuse_websocket,
    send_bytes,
    send_error,
    send_json,
)
from heliograph.background.supervisor import SUPERVISE_EVERY_S, HostSupervisor
from heliograph.config import Settings, worker_settings
from heliograph.errors import GatewayError
from heliograph.providers.http import HttpClient
from heliograph.providers.registry import Registry
from heliograph.proxy import passthrough, pipeline
from heliograph.proxy.auth import Authenticator
from heliograph.proxy.cache import ResponseCache
from heliograph.proxy.front import Front
from heliograph.proxy.fronts import OPENAI
from heliograph.proxy.models import get_model, list_models
from heliograph.proxy.ratelimit import RateLimiter
from heliograph.proxy.request_ids import RequestIds
from heliograph.routes import LazyRoutes, Mount, Route, RouteTable
from heliograph.sinks import RecordSinks
from heliograph.sinks.access_log import AccessLogSink
from heliograph.sinks.journal import JournalSink
from heliograph.sinks.metrics import MetricsSink
from heliograph.sinks.telemetry import TelemetrySink
from heliograph.state import SharedState
from heliograph.store import Store, open_store
from heliograph.store.journal import Journal
from heliograph.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from heliograph.analytics import Analytics

log = logging.getLogger("heliograph")

# How often a worker closes its journal segment for the writer: the delay before a
# record shows in the query API.
JOURNAL_ROTATE_S = 0.2
# Paths whose errors are not OpenAI-shaped (the fronts answering there say how).
ANTHROPIC_PATHS = {"/v1/messages", "/v1/messages/count_tokens"}


def error_front(path: str) -> Front:
    """The front whose shape a 404 or 405 at `path` takes. The Anthropic front is imported
    only when a request comes for one of its paths: a worker serving OpenAI-shaped traffic
    never loads it (issue 15)."""
    if path not in ANTHROPIC_PATHS:
        return OPENAI
    from heliograph.proxy.anthropic_front import ANTHROPIC, TOKEN_COUNT
    return ANTHROPIC if path == "/v1/messages" else TOKEN_COUNT
# Allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 10_000


class NotStartedState(SharedState):
    """The shared state until start() opens the real one (it binds to the running loop).
    A stand-in rather than None, so the request path never checks: no request arrives
    before startup, and one that somehow did would fail loudly here."""

    backend = "not started"

    async def close(self) -> None:
        pass


NOT_STARTED = NotStartedState()


@dataclass
class Gateway:
    settings: Settings
    store: Store
    journal: Journal
    http: HttpClient
    registry: Registry
    auth: Authenticator
    # Where each finished record goes: the journal first (see heliograph/sinks/).
    sinks: RecordSinks
    # Caller-chosen request ids already used (heliograph/proxy/request_ids.py).
    request_ids: RequestIds
    # Spend counters and enforcement (heliograph/alerts/budgets.py); also a record sink.
    budgets: Budgets
    # Built at startup, inside the event loop (see start()); stand-ins until then.
    background: HostSupervisor | None = None
    state: SharedState = NOT_STARTED
    cache: ResponseCache = field(default_factory=lambda: ResponseCache(NOT_STARTED))
    ratelimits: RateLimiter = field(default_factory=lambda: RateLimiter(NOT_STARTED))
    _analytics: Analytics | None = None

    @property
    def analytics(self) -> Analytics:
        """The read side, on its own connections and threads (heliograph/analytics),
        opened by the first request that reads (the query API, the dashboard): the
        package is large and a worker serving only proxy traffic never needs it."""
        if self._analytics is None:
            from heliograph.analytics import open_analytics

            self._analytics = open_analytics(self.settings.database_url,
                                             self.settings.analytics_query_timeout_s,
                                             self.settings.analytics_threads)
        return self._analytics

    @classmethod
    def build(cls, settings: Settings) -> Gateway:
        store = open_store(settings.database_url)
        journal = Journal(settings.resolved_journal_dir())
        budgets = Budgets(store, settings.alerts_timezone)
        http = HttpClient(settings.upstream_connect_timeout_s, settings.upstream_timeout_s)
        sinks = RecordSinks(JournalSink(journal), [
            # Further sinks (metrics, budgets, webhooks, tracing): one line each, here.
            *([TelemetrySink.from_settings(settings)] if settings.otlp_endpoint else []),
            AccessLogSink(settings.access_log, settings.log_format),
            *([MetricsSink()] if settings.metrics_enabled else []),
            budgets,
        ])
        return cls(settings, store, journal, http, Registry(settings, http),
                   Authenticator(store), sinks, RequestIds(store), budgets)

    async def start(self) -> None:
        """Inside the running loop: the Redis client binds to it."""
        from heliograph.proxy.cache import ResponseCache
        from heliograph.proxy.ratelimit import RateLimiter
        from heliograph.state import open_state

        self.background = HostSupervisor(self.journal.directory, self.settings.database_url,
                                         self.settings.redis_url)
        self._supervise()
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, self.journal.prepare_spare)
        self._rotation = loop.call_later(JOURNAL_ROTATE_S, self._rotate)
        self.state = open_state(self.settings, fail_open=self.settings.ratelimit_fail_open,
                                store=self.store)
        self.cache = ResponseCache(self.state)
        self.ratelimits = RateLimiter(self.state)
        await self.budgets.start(self.state)
        # Everything loaded so far (price tables, modules) lives as long as the process:
        # move it out of the collector's sight so collections stay cheap on the hot path.
        gc.collect()
        gc.freeze()
        # Every request allocates containers (parsed bodies, the record, aiohttp's and
        # uvicorn's objects) that die with it. At the default threshold young collections
        # cost ~5% of a worker's instructions under load (perf stat, wrk -c32); at 10,000
        # they are rare and peak RSS stays the same (bench/run.py).
        gc.set_threshold(GC_YOUNG_THRESHOLD)

    async def stop(self) -> None:
        if self.cache is not None:
            await self.cache.drain()
        if self.ratelimits is not None:
            await self.ratelimits.drain()
        await self.budgets.drain()
        if self.state is not None:
            await self.state.close()
        await self.http.close()
        self._rotation.cancel()
        # The background host is left running: it outlives this worker while the gateway
        # lives, and gives the journal a last pass once the gateway is gone.
        if self.background is not None:
            self._supervision.cancel()
        self.sinks.close()  # the journal last: it hands its final segment to the writer
        if self._analytics is not None:
            await asyncio.to_thread(self._analytics.close)
        self.store.close()

    def _supervise(self) -> None:
        """Keep the background host (the journal writer) running; follow the master."""
        assert self.background is not None
        self.background.tick()
        self._supervision = asyncio.get_running_loop().call_later(SUPERVISE_EVERY_S,
                                                                  self._supervise)

    def _rotate(self) -> None:
        """Hand the journal's records to the writer a few times a second."""
        loop = asyncio.get_running_loop()
        if self.journal.rotate():
            # The next segment is created off the loop, ready for the next rotation.
            loop.run_in_executor(None, self.journal.prepare_spare)
        self._rotation = loop.call_later(JOURNAL_ROTATE_S, self._rotate)


async def healthz(gw: Gateway, request: Request, send: Send) -> None:
    # 503 while the journal cannot write: this worker refuses proxied requests.
    failure = gw.journal.check()
    if failure is None:
        await send_json(send, 200, {"status": "ok"})
    else:
        await send_json(send, 503, {"status": "degraded", "reason": failure})


# The proxy's own paths: answered through RouteTable.exact, one dict lookup.
PROXY_ROUTES = [
    Route("POST", "/v1/chat/completions", pipeline.chat_completions),
    Route("POST", "/chat/completions", pipeline.chat_completions),
    Route("POST", "/v1/embeddings", pipeline.embeddings),
    Route("POST", "/embeddings", pipeline.embeddings),
    Route("POST", "/v1/messages", pipeline.messages),
    Route("POST", "/v1/messages/count_tokens", pipeline.count_tokens),
    Route("POST", "/v1/responses", pipeline.responses),
    Route("POST", "/responses", pipeline.responses),
    Route("POST", "/v1/responses/compact", pipeline.responses_compact),
    Route("POST", "/responses/compact", pipeline.responses_compact),
    Route("GET", "/v1/models", list_models),
    Route("GET", "/models", list_models),
]


def build_routes() -> list[Route | Mount | LazyRoutes]:
    """Every route the gateway answers, in match order (the first match wins). A new
    endpoint is a Route here or in its api/ module's ROUTES; a sub-application (the
    dashboard) is a Mount."""
    return [*PROXY_ROUTES, *passthrough.routes(),
            Route("GET", "/v1/models/{model:path}", get_model),
            Route("GET", "/healthz", healthz), api.lazy_routes(), *api.eager_routes(),
            LazyRoutes(("/metrics",), _prometheus_routes)]


def _prometheus_routes() -> list[Route]:
    """The scrape endpoint, loaded on the first scrape: proxy traffic never uses it. (Small:
    ~0.2 MB a worker, since the MetricsSink's counters load most of prometheus_client.)"""
    from heliograph import prometheus

    return prometheus.ROUTES


class App:
    """The ASGI application: exact-path dispatch for the hot routes, then the route table
    (path parameters, mounts, 404/405)."""

    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.table = RouteTable([*build_routes(), *dashboard.mounts(gateway)])
        self.exact = self.table.exact
        # uvicorn's proxy-headers middleware, when the server lets App run it
        # (server.forwarded_when_sent): for requests with X-Forwarded-* headers only.
        self._forwarded: ASGIApp | None = None

    def trust_forwarded(self, middleware: ASGIApp) -> None:
        self._forwarded = middleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            request = Request(scope, receive)
            headers = request.headers
            if self._forwarded is not None and ("x-forwarded-for" in headers
                                                or "x-forwarded-proto" in headers):
                await self._forwarded(scope, receive, send)
            try:
                # The proxy's own paths straight to their handler: one coroutine frame
                # fewer on every step of the request.
                handler = self.exact.get((request.method, request.path))
                if handler is not None:
                    await handler(self.gw, request, send)
                else:
                    await self._dispatch(request, send)
            except ClientDisconnected:
                pass  # gone before its request was read: nobody to answer
            except Exception:
                # Never a traceback to the caller: an OpenAI-shaped 500, the details in
                # the server log.
                log.exception("internal error on %s %s", request.method, request.path)
                with contextlib.suppress(Exception):  # the answer may be under way
                    await send_error(send, GatewayError("internal gateway error"))
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            if self._forwarded is not None:
                await self._forwarded(scope, receive, send)
            log.warning("refused a WebSocket upgrade on %s (400: no WebSocket endpoint)", scope.get("path"))
            await refuse_websocket(scope, receive, send)

    async def _dispatch(self, request: Request, send: Send) -> None:
        """Everything but the exact paths (__call__ answers those): path parameters,
        mounts, 404/405."""
        try:
            found = self.table.resolve(request.method, request.path)
        except GatewayError as error:  # 404, or 405 with Allow
            front = error_front(request.path)  # the path's own error shape
            await send_bytes(send, error.status, front.error_body(error),
                             encode_headers(error.headers))
            return
        if found.mount is not None:
            await found.mount.app(found.mount.child_scope(request.scope), request.receive,
                                  send)
            return
        assert found.route is not None
        request.scope["path_params"] = found.params
        await found.route.handler(self.gw, request, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gw.start()
                except Exception as exc:  # report, so uvicorn exits with the reason
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gw.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_app(settings: Settings) -> App:
    return App(Gateway.build(settings))


def create_app() -> App:
    """uvicorn factory for worker processes: settings come from the environment the CLI
    prepared (HELIOGRAPH_CONFIG plus the usual overrides)."""
    from heliograph import logs

    settings = worker_settings()
    logs.configure(settings.log_level, settings.log_format)
    return build_app(settings)
