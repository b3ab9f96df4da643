"""uvicorn's proxy-headers middleware, paid only by requests that carry X-Forwarded-For or
X-Forwarded-Proto: the gateway's config hands it to App instead of wrapping App in it
(server.forwarded_when_sent), and App runs it on those requests' scopes."""

from __future__ import annotations

import asyncio

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from heliograph.app import App
from heliograph.asgi import Request
from heliograph.server import ConnectionLimits, GatewayConfig


class TrustingApp:
    """An app that takes the middleware, as App does."""

    def __init__(self) -> None:
        self.forwarded = None

    def trust_forwarded(self, middleware) -> None:
        self.forwarded = middleware

    async def __call__(self, scope, receive, send) -> None:
        pass


class PlainApp:
    async def __call__(self, scope, receive, send) -> None:
        pass


def loaded(app, **kwargs):
    config = GatewayConfig(app, limits=ConnectionLimits(), lifespan="off",
                           log_level="error", **kwargs)
    config.load()
    return config.loaded_app


def scope_after(middleware, client, headers):
    scope = {"type": "http", "client": client, "scheme": "http", "headers": headers}
    asyncio.run(middleware(scope, None, None))
    return scope


def test_the_app_is_not_wrapped_and_gets_uvicorns_middleware():
    app = TrustingApp()
    assert loaded(app, forwarded_allow_ips="10.0.0.1") is app
    assert isinstance(app.forwarded, ProxyHeadersMiddleware)
    forwarded = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    # The configured trusted address, not the default loopback, is trusted.
    trusted = scope_after(app.forwarded, ("10.0.0.1", 5000), forwarded)
    assert trusted["client"] == ("203.0.113.9", 0) and trusted["scheme"] == "https"
    untrusted = scope_after(app.forwarded, ("127.0.0.1", 5000), forwarded)
    assert untrusted["client"] == ("127.0.0.1", 5000) and untrusted["scheme"] == "http"


def test_other_apps_keep_uvicorns_wrapping():
    app = PlainApp()
    outer = loaded(app)
    assert isinstance(outer, ProxyHeadersMiddleware) and outer.app is app
    assert loaded(app, proxy_headers=False) is app


class Seen:
    """App's request path stopped at dispatch: the scope as the handlers would see it."""

    def __init__(self) -> None:
        self.scopes: list[dict] = []


def app_with(middleware) -> tuple[App, Seen]:
    seen = Seen()
    app = App.__new__(App)   # no gateway: only __call__'s own steps are looked at
    app._forwarded = None
    app.exact = {}

    async def dispatch(request: Request, send) -> None:
        seen.scopes.append(dict(request.scope))

    app._dispatch = dispatch  # type: ignore[method-assign]
    if middleware is not None:
        app.trust_forwarded(middleware)
    return app, seen


def test_app_applies_it_only_to_requests_with_forwarded_headers():
    runs = []

    class Counting(ProxyHeadersMiddleware):
        async def __call__(self, scope, receive, send) -> None:
            runs.append(scope["path"])
            await super().__call__(scope, receive, send)

    async def nothing(scope, receive, send) -> None:
        pass

    app, seen = app_with(Counting(nothing, trusted_hosts="127.0.0.1"))

    def call(path, headers):
        scope = {"type": "http", "method": "GET", "path": path, "client": ("127.0.0.1", 1),
                 "scheme": "http", "headers": headers}
        asyncio.run(app(scope, None, None))

    call("/plain", [(b"host", b"x"), (b"x-forwarded-host", b"y")])
    call("/for", [(b"x-forwarded-for", b"203.0.113.9")])
    call("/proto", [(b"x-forwarded-proto", b"https")])
    assert runs == ["/for", "/proto"]
    assert [s["client"] for s in seen.scopes] == [("127.0.0.1", 1), ("203.0.113.9", 0),
                                                  ("127.0.0.1", 1)]
    assert [s["scheme"] for s in seen.scopes] == ["http", "http", "https"]
