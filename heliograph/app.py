"""build_app(settings): wires the upstream client, the store, the journal and its writer,
and routes requests. State lives on one Gateway object, never in module globals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from dataclasses import dataclass

from heliograph.api.routes import QueryAPI
from heliograph.asgi import ClientDisconnected, Request, send_bytes, send_error, send_json
from heliograph.config import Settings, load_settings
from heliograph.errors import GatewayError, MethodNotAllowed, NotFound
from heliograph.providers.http import HttpClient
from heliograph.providers.registry import Registry
from heliograph.proxy import pipeline
from heliograph.proxy.anthropic_front import ANTHROPIC, TOKEN_COUNT
from heliograph.proxy.auth import Authenticator
from heliograph.proxy.fronts import OPENAI
from heliograph.proxy.models import list_models
from heliograph.proxy.request_ids import RequestIds
from heliograph.store import open_store
from heliograph.store import writer as journal_writer
from heliograph.store.journal import Journal

log = logging.getLogger("heliograph")

# How often a worker closes its journal segment for the writer: the delay before a
# record shows in the query API.
JOURNAL_ROTATE_S = 0.2
# Paths whose errors are not OpenAI-shaped (the fronts answering there say how).
ERROR_FRONTS = {"/v1/messages": ANTHROPIC, "/v1/messages/count_tokens": TOKEN_COUNT}
# Allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 10_000


@dataclass
class Gateway:
    settings: Settings
    store: object
    journal: Journal
    http: HttpClient
    registry: Registry
    auth: Authenticator
    request_ids: RequestIds
    # Built at startup, inside the event loop (see start()).
    writer: object | None = None
    state: object | None = None
    cache: object | None = None
    ratelimits: object | None = None

    @classmethod
    def build(cls, settings: Settings) -> Gateway:
        store = open_store(settings.database_url)
        journal = Journal(settings.resolved_journal_dir())
        http = HttpClient(settings.upstream_connect_timeout_s, settings.upstream_timeout_s)
        return cls(settings, store, journal, http, Registry(settings, http),
                   Authenticator(store), RequestIds(store))

    async def start(self) -> None:
        """Inside the running loop: the Redis client binds to it."""
        from heliograph.proxy.cache import ResponseCache
        from heliograph.proxy.ratelimit import RateLimiter
        from heliograph.state import open_state

        self.writer = journal_writer.spawn(self.journal.directory, self.settings.database_url)
        self._rotation = asyncio.get_running_loop().call_later(JOURNAL_ROTATE_S, self._rotate)
        self.state = open_state(self.settings, fail_open=self.settings.ratelimit_fail_open,
                                store=self.store)
        self.cache = ResponseCache(self.state)
        self.ratelimits = RateLimiter(self.state)
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
        if self.state is not None:
            await self.state.close()
        await self.http.close()
        self._rotation.cancel()
        self.journal.close()
        if self.writer is not None:
            await asyncio.to_thread(journal_writer.stop, self.writer)
        self.store.close()

    def _rotate(self) -> None:
        """Hand the journal's records to the writer a few times a second."""
        self.journal.rotate()
        self._rotation = asyncio.get_running_loop().call_later(JOURNAL_ROTATE_S, self._rotate)


class App:
    """The ASGI application: exact-path dispatch for the hot routes, prefixes for the API."""

    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.api = QueryAPI(gateway)
        self.routes = {
            ("POST", "/v1/chat/completions"): pipeline.chat_completions,
            ("POST", "/chat/completions"): pipeline.chat_completions,
            ("POST", "/v1/embeddings"): pipeline.embeddings,
            ("POST", "/embeddings"): pipeline.embeddings,
            ("POST", "/v1/messages"): pipeline.messages,
            ("POST", "/v1/messages/count_tokens"): pipeline.count_tokens,
            ("POST", "/v1/responses"): pipeline.responses,
            ("POST", "/responses"): pipeline.responses,
            ("GET", "/v1/models"): list_models,
            ("GET", "/models"): list_models,
        }
        self.paths = {path for _, path in self.routes}

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            request = Request(scope, receive)
            try:
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

    async def _dispatch(self, request: Request, send) -> None:
        handler = self.routes.get((request.method, request.path))
        if handler is not None:
            await handler(self.gw, request, send)
        elif request.path == "/healthz":
            # 503 while the journal cannot write: this worker refuses proxied requests.
            failure = self.gw.journal.check()
            if failure is None:
                await send_json(send, 200, {"status": "ok"})
            else:
                await send_json(send, 503, {"status": "degraded", "reason": failure})
        elif request.path.startswith(("/api/v1/", "/v1/request/")):
            await self.api.handle(request, send)
        elif request.path in self.paths:
            allowed = sorted(m for m, p in self.routes if p == request.path)
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.path}; "
                                     f"use {', '.join(allowed)}")
            front = ERROR_FRONTS.get(request.path, OPENAI)  # the API's own error shape
            await send_bytes(send, error.status, front.error_body(error),
                             [(b"allow", ", ".join(allowed).encode())])
        else:
            await send_error(send, NotFound(f"no route for {request.method} {request.path}"))

    async def _lifespan(self, receive, send):
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
    return build_app(load_settings(os.environ.get("HELIOGRAPH_CONFIG") or None))
