"""Signed session cookies and CSRF tokens.

A sign-in exchanges a gateway key for a cookie holding the key's *id* (never the key),
its organization and a random CSRF token, signed and time-stamped with itsdangerous. The
key itself is looked up again on every page (see app.py), so a revoked or expired key
signs its sessions out at once, and a demoted admin loses the admin pages.

Forms carry the CSRF token in a hidden field; a POST whose field does not match the
session's token (or, before sign-in, the sign-in cookie's token) is refused. The cookie
is HttpOnly and SameSite=Lax, and Secure when the dashboard is served over https.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "heliograph_session"
# Before sign-in: the token the sign-in form must echo (login CSRF).
LOGIN_COOKIE = "heliograph_login"
LOGIN_MAX_AGE_S = 3600


@dataclass(frozen=True)
class Session:
    key_id: str
    organization: str
    csrf: str


class SessionCodec:
    def __init__(self, secret: str, session_hours: float):
        self._sessions = URLSafeTimedSerializer(secret, salt="heliograph.dashboard.session")
        self._login = URLSafeTimedSerializer(secret, salt="heliograph.dashboard.login")
        self.max_age_s = int(session_hours * 3600)

    def issue(self, key_id: str, organization: str) -> str:
        return self._sessions.dumps({"k": key_id, "o": organization,
                                     "c": secrets.token_urlsafe(24)})

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie holds, or None when absent, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is one too
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "koc"):
            return None
        return Session(data["k"], data["o"], data["c"])

    def login_token(self) -> tuple[str, str]:
        """(cookie value, form token) for a sign-in form."""
        token = secrets.token_urlsafe(24)
        return self._login.dumps(token), token

    def login_token_matches(self, cookie: str | None, submitted: str | None) -> bool:
        if not cookie or not submitted:
            return False
        try:
            token = self._login.loads(cookie, max_age=LOGIN_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token, submitted)


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


def cookie_header(name: str, value: str, max_age_s: int, secure: bool, path: str) -> str:
    flags = f"; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age_s}"
    return f"{name}={value}{flags}{'; Secure' if secure else ''}"


def parse_cookies(header: str) -> dict[str, str]:
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}
