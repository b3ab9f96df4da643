"""The dashboard: an ASGI application mounted at /dashboard (never on the proxy's path).

Every page goes through `page()`: the session cookie is read and its key looked up again
(revoked, expired or unknown → back to sign-in), the page's handler returns a template
and its data, and the answer carries the security headers (strict CSP with no inline
script, frame-ancestors 'none', no-store). Errors become an HTML page with the right
status, never a traceback. Data comes only from heliograph/analytics (the read side) and,
for keys, the store — like the query API.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from heliograph.asgi import ClientDisconnected, Request
from heliograph.dashboard import render
from heliograph.dashboard.secret import resolve_secret
from heliograph.dashboard.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionCodec,
    cookie_header,
    csrf_matches,
    parse_cookies,
)
from heliograph.errors import Forbidden, GatewayError, NotFound, ServiceUnavailable
from heliograph.routes import RouteTable
from heliograph.store.base import KeyRow
from heliograph.types import Receive, Scope, Send

log = logging.getLogger("heliograph.dashboard")

MAX_FORM_BYTES = 64 * 1024
# No inline script anywhere (charts are JSON data blocks read by dashboard.js); inline
# styles are allowed because plotly.js positions its SVG with them.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
HTML = b"text/html; charset=utf-8"


@dataclass
class Page:
    template: str
    context: dict[str, Any]
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Redirect:
    location: str
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Download:
    """A file answer (a request's raw JSON), with the same security headers."""

    body: bytes
    filename: str
    content_type: bytes = b"application/json"


@dataclass
class Context:
    """What a page handler gets: the request, the signed-in key, and helpers."""

    dash: DashboardApp
    request: Request
    session: Session
    key: KeyRow
    form: dict[str, str] = field(default_factory=dict)

    @property
    def gw(self) -> Any:
        return self.dash.gw

    @property
    def org(self) -> str:
        return self.key.organization

    @property
    def query(self) -> list[tuple[str, str]]:
        return self.request.query

    def url(self, path: str, params: list[tuple[str, str]] | None = None) -> str:
        base = self.request.scope.get("root_path", "") + path
        return base + ("?" + urlencode(params) if params else "")

    async def read(self, query: Callable[..., Any], *args: Any) -> Any:
        """A read-side query on the analytics threads (GatewayError on bad input)."""
        return await self.gw.analytics.run(query, *args)


Handler = Callable[[Context], Awaitable[Page | Redirect | Download]]


def is_https(scope: Scope, headers: dict[str, str]) -> bool:
    return scope.get("scheme") == "https" or headers.get("x-forwarded-proto") == "https"


class DashboardApp:
    def __init__(self, gw: Any):
        from heliograph.dashboard import pages

        self.gw = gw
        settings = gw.settings
        self.codec = SessionCodec(resolve_secret(settings.dashboard_session_secret,
                                                 settings.resolved_journal_dir()),
                                  settings.dashboard_session_hours)
        self.templates = render.environment()
        self.table = RouteTable(pages.routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            found = self.table.resolve(request.method, request.path)
            assert found.route is not None
            request.scope["path_params"] = found.params
            await found.route.handler(self, request, send)
        except ClientDisconnected:
            pass
        except GatewayError as error:
            await self.send_page(request, send, self.error_page(error.status, error.message))
        except Exception:
            log.exception("dashboard error on %s %s", request.method, request.path)
            await self.send_page(request, send, self.error_page(
                500, "Something went wrong on the server; the details are in its log."))

    # -- answers ------------------------------------------------------------------
    def error_page(self, status: int, message: str) -> Page:
        return Page("error.html", {"status": status, "message": message}, status)

    async def send_page(self, request: Request, send: Send,
                        result: Page | Redirect | Download,
                        context: dict[str, Any] | None = None) -> None:
        if isinstance(result, Download):
            disposition = f'attachment; filename="{result.filename}"'.encode("latin-1")
            headers = [(b"content-type", result.content_type),
                       (b"content-length", str(len(result.body)).encode()),
                       (b"content-disposition", disposition), (b"cache-control", b"no-store"),
                       *SECURITY_HEADERS]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": result.body})
            return
        if isinstance(result, Redirect):
            headers = [(b"location", result.location.encode("latin-1")),
                       (b"content-length", b"0"), *SECURITY_HEADERS,
                       (b"cache-control", b"no-store"),
                       *((k.encode(), v.encode("latin-1")) for k, v in result.headers)]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        values = {"base": request.scope.get("root_path", ""), "path": request.path,
                  "session": None, "key": None, "csrf": "", "nav": "",
                  **(context or {}), **result.context}
        body = self.templates.get_template(result.template).render(values).encode()
        headers = [(b"content-type", HTML), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store"), *SECURITY_HEADERS,
                   *((k.encode(), v.encode("latin-1")) for k, v in result.headers)]
        await send({"type": "http.response.start", "status": result.status,
                    "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def session_cookie(self, request: Request, value: str, max_age_s: int,
                       name: str = SESSION_COOKIE) -> tuple[str, str]:
        path = request.scope.get("root_path", "") or "/"
        return ("set-cookie", cookie_header(name, value, max_age_s,
                                            is_https(request.scope, request.headers), path))

    # -- who is signed in -----------------------------------------------------------
    def cookies(self, request: Request) -> dict[str, str]:
        return parse_cookies(request.headers.get("cookie", ""))

    async def signed_in(self, request: Request) -> tuple[Session, KeyRow] | None:
        """The session and its key, as the store has it now; None when there is no
        valid session or its key was revoked, expired or moved."""
        session = self.codec.read(self.cookies(request).get(SESSION_COOKIE))
        if session is None:
            return None
        store = self.gw.store
        try:
            row = await asyncio.to_thread(store.get_key, session.key_id, session.organization)
        except getattr(store, "outage_errors", ()) as exc:
            raise ServiceUnavailable("the dashboard cannot check your session: the "
                                     "database is unreachable; retry shortly") from exc
        if row is None or row.revoked_at is not None or (
                row.expires_ts is not None and row.expires_ts <= time.time()):
            return None
        return session, row

    async def read_form(self, request: Request) -> dict[str, str]:
        raw = await request.body(MAX_FORM_BYTES)
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def login_redirect(request: Request) -> Redirect:
    base = request.scope.get("root_path", "")
    target = request.path + ("?" + request.scope["query_string"].decode("latin-1")
                             if request.scope.get("query_string") else "")
    return Redirect(f"{base}/login?{urlencode({'next': base + target})}")


def page(admin: bool = False, method: str = "GET") -> Callable[[Handler], Any]:
    """Wrap a page handler: sign-in required (admin keys only when `admin`); POSTs need
    the session's CSRF token in the form's `csrf` field."""

    def wrap(handler: Handler) -> Any:
        @functools.wraps(handler)
        async def asgi(dash: DashboardApp, request: Request, send: Send) -> None:
            found = await dash.signed_in(request)
            if found is None:
                if method == "POST":
                    raise Forbidden("your session has ended: sign in again")
                await dash.send_page(request, send, login_redirect(request))
                return
            session, key = found
            ctx = Context(dash, request, session, key)
            if method == "POST":
                ctx.form = await dash.read_form(request)
                if not csrf_matches(session, ctx.form.get("csrf")):
                    raise Forbidden("the form's security token is missing or stale: "
                                    "reload the page and try again")
            if admin and not key.admin:
                raise Forbidden("this page needs an admin key; you signed in with a "
                                "read-only key")
            if "\x00" in request.path or any("\x00" in k + v for k, v in request.query):
                raise NotFound("no such page")
            result = await handler(ctx)
            await dash.send_page(request, send, result, {
                "session": session, "key": key, "csrf": session.csrf})

        return asgi

    return wrap


__all__ = ["Context", "DashboardApp", "Download", "LOGIN_COOKIE", "Page", "Redirect", "page"]
