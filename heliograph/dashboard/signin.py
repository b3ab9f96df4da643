"""Sign-in, sign-out, and the static files (own CSS/JS, plotly.js from its package)."""

from __future__ import annotations

import functools
import hashlib
import os
from importlib import resources
from urllib.parse import urlsplit

from heliograph.asgi import Request
from heliograph.dashboard.app import DashboardApp, Page, Redirect, page
from heliograph.dashboard.session import LOGIN_COOKIE, LOGIN_MAX_AGE_S, SESSION_COOKIE
from heliograph.errors import Forbidden, GatewayError, NotFound
from heliograph.types import Send


def _safe_next(dash_base: str, target: str | None) -> str:
    """Where to go after sign-in: a path of this dashboard only (never another site)."""
    if not target:
        return dash_base + "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(dash_base + "/") \
            or target.startswith("//") or "\\" in target:
        return dash_base + "/"
    return target


async def _login_form(dash: DashboardApp, request: Request, send: Send, error: str = "",
                      status: int = 200) -> None:
    cookie, token = dash.codec.login_token()
    base = request.scope.get("root_path", "")
    target = _safe_next(base, next((v for k, v in request.query if k == "next"), None))
    await dash.send_page(request, send, Page(
        "login.html", {"login_token": token, "next": target, "error": error}, status,
        [dash.session_cookie(request, cookie, LOGIN_MAX_AGE_S, LOGIN_COOKIE)]))


async def login(dash: DashboardApp, request: Request, send: Send) -> None:
    if await dash.signed_in(request) is not None:
        await dash.send_page(request, send, Redirect(request.scope.get("root_path", "") + "/"))
        return
    await _login_form(dash, request, send)


async def login_submit(dash: DashboardApp, request: Request, send: Send) -> None:
    form = await dash.read_form(request)
    if not dash.codec.login_token_matches(dash.cookies(request).get(LOGIN_COOKIE),
                                          form.get("login_token")):
        raise Forbidden("the sign-in form expired or was not sent from this dashboard: "
                        "reload it and try again")
    key = form.get("key", "").strip()
    try:
        principal = await dash.gw.auth.authenticate({"authorization": f"Bearer {key}"})
    except GatewayError as error:
        message = "That key is not valid." if error.status == 401 else error.message
        await _login_form(dash, request, send, message, error.status)
        return
    base = request.scope.get("root_path", "")
    cookie = dash.codec.issue(principal.key_id, principal.organization)
    await dash.send_page(request, send, Redirect(
        _safe_next(base, form.get("next")),
        [dash.session_cookie(request, cookie, dash.codec.max_age_s),
         dash.session_cookie(request, "", 0, LOGIN_COOKIE)]))


@page(method="POST")
async def logout(ctx) -> Redirect:
    return Redirect(ctx.url("/login"), [ctx.dash.session_cookie(ctx.request, "", 0, SESSION_COOKIE)])


STATIC_TYPES = {".css": b"text/css; charset=utf-8", ".js": b"text/javascript; charset=utf-8"}
OWN_STATIC = ("dashboard.css", "dashboard.js")


@functools.lru_cache(maxsize=8)
def _static_file(name: str) -> tuple[bytes, bytes]:
    """(content, etag). plotly.min.js is the copy the installed plotly package ships."""
    if name == "plotly.min.js":
        import plotly

        path = os.path.join(os.path.dirname(plotly.__file__), "package_data", name)
        with open(path, "rb") as fh:
            content = fh.read()
    elif name in OWN_STATIC:
        content = resources.files("heliograph.dashboard").joinpath("static", name).read_bytes()
    else:
        raise NotFound(f"no static file {name!r}")
    return content, f'"{hashlib.sha256(content).hexdigest()[:16]}"'.encode()


async def static(dash: DashboardApp, request: Request, send: Send) -> None:
    name = request.scope["path_params"]["name"]
    content, etag = _static_file(name)
    headers = [(b"content-type", STATIC_TYPES[os.path.splitext(name)[1]]),
               (b"etag", etag), (b"cache-control", b"public, max-age=3600"),
               (b"x-content-type-options", b"nosniff")]
    if request.headers.get("if-none-match") == etag.decode():
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})
