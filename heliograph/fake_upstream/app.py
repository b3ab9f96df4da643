"""The aiohttp application: request recording, header echo, control endpoints.

Control endpoints (no auth, never recorded):
  GET    /_fake/requests   last N received requests, oldest first:
                           [{method, path, query, headers, body, time}, ...]
                           (headers: lower-case names; body: parsed JSON, text or null;
                           ``?limit=K`` returns only the last K)
  DELETE /_fake/requests   forget them
  GET    /_fake/health     {"ok": true}

Every other response carries
  x-fake-received-authorization  the Authorization header as received
  x-fake-received-headers        lower-case names of all received headers, comma separated
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import anthropic_api, azure_api, gemini_api, moderations, openai_api, openai_surface
from .state import STATE_KEY, FakeState

CONTROL_PREFIX = "/_fake/"


@web.middleware
async def _record(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    if request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    request.app[STATE_KEY].record(request, await request.read())
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        return openai_api.not_found(request, exc.status)


async def _echo_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(CONTROL_PREFIX):
        return
    if "Authorization" in request.headers:
        response.headers["x-fake-received-authorization"] = request.headers["Authorization"]
    names = dict.fromkeys(name.lower() for name in request.headers)
    response.headers["x-fake-received-headers"] = ",".join(names)


async def _get_requests(request: web.Request) -> web.Response:
    recorded = list(request.app[STATE_KEY].recorded)
    limit = request.query.get("limit")
    if limit and limit.isdigit():
        recorded = recorded[-int(limit):] if int(limit) else []
    return web.json_response(recorded)


async def _delete_requests(request: web.Request) -> web.Response:
    request.app[STATE_KEY].recorded.clear()
    return web.json_response({"cleared": True})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_app(*, chunk_delay_ms: float = 0.0, max_recorded: int = 200) -> web.Application:
    """A fresh fake provider (own request log and counters).

    ``chunk_delay_ms``: default pause between stream chunks (per request:
    ``chunk-delay-<ms>`` behaviour).  ``max_recorded``: size of the request log.
    """
    app = web.Application(middlewares=[_record], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = FakeState(max_recorded=max_recorded, chunk_delay_ms=chunk_delay_ms)
    app.on_response_prepare.append(_echo_headers)
    app.router.add_get(CONTROL_PREFIX + "requests", _get_requests)
    app.router.add_delete(CONTROL_PREFIX + "requests", _delete_requests)
    app.router.add_get(CONTROL_PREFIX + "health", _health)
    openai_api.register(app)
    moderations.register(app)
    openai_surface.register(app)
    anthropic_api.register(app)
    gemini_api.register(app)
    azure_api.register(app)
    return app
