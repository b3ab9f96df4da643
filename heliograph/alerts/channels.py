"""Sending one notice to one channel: a signed JSON webhook, a Slack incoming webhook, or
an email over SMTP. Each send is bounded by a timeout and raises DeliveryError on any
failure, so the delivery job can retry it later without it holding up the others.

Signing (webhook channels and per-request webhooks): the header
`Heliograph-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
A receiver recomputes the HMAC over the timestamp it was given and the exact bytes it
received, and may refuse an old `t` to stop replays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import orjson

if TYPE_CHECKING:  # imported where a notice is sent: the background host loads this
    import aiohttp  # module whether or not there is anything to send (~17 MB)

SIGNATURE_HEADER = "Heliograph-Signature"
# Well under the deployment lock's 10 s expiry: a pass must finish while it holds it.
SEND_TIMEOUT_S = 5.0


class DeliveryError(Exception):
    """The channel did not take the notice (unreachable, refused, timed out)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    sender: str = "heliograph@localhost"
    starttls: bool = True
    tls: bool = False

    @classmethod
    def from_settings(cls, settings) -> SmtpSettings:
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_username,
                   settings.smtp_password, settings.smtp_from, settings.smtp_starttls,
                   settings.smtp_tls)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The Heliograph-Signature header value for body."""
    # hashlib and hmac map OpenSSL's libcrypto (~3.5 MB RSS): imported by the first
    # notice signed, not by the background host that may never send one.
    import hashlib
    import hmac

    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance_s: float = 300) -> bool:
    """What a receiver does (and the tests do): the signature matches and is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    import hmac

    return hmac.compare_digest(expected, parts.get("v1", ""))


async def post_json(session: aiohttp.ClientSession, url: str, body: bytes,
                    secret: str | None = None) -> None:
    import aiohttp

    # The gateway's verified context, as for providers: where providers/http.py was
    # imported first, aiohttp's own contexts hold no certificates.
    from heliograph.providers.http import tls_for

    headers = {"Content-Type": "application/json", "User-Agent": "heliograph-alerts"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
                                ssl=tls_for(url)) as resp:
            await resp.read()
            if resp.status >= 300:
                raise DeliveryError(f"{url} answered {resp.status}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DeliveryError(f"{url}: {type(exc).__name__}: {exc}") from None


def send_email(smtp: SmtpSettings, to: list[str], message: dict) -> None:
    """Blocking (the delivery job runs it in a thread): plain-text and HTML parts."""
    # Imported here: the background host loads this module whether or not anything is
    # ever mailed, and smtplib, ssl and email cost it ~3 MB (bench/footprint.py).
    import smtplib
    import ssl
    from email.message import EmailMessage

    if not smtp.host:
        raise DeliveryError("no [smtp] host configured: email channels cannot deliver")
    mail = EmailMessage()
    mail["Subject"] = message["subject"]
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(to)
    mail.set_content(message["text"])
    mail.add_alternative(message["html"], subtype="html")
    try:
        if smtp.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port,
                                                    timeout=SEND_TIMEOUT_S,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=SEND_TIMEOUT_S)
        with client:
            if smtp.starttls and not smtp.tls:
                # Required when asked for: a server without it fails the delivery rather
                # than receiving the password in the clear.
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password)
            client.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {exc}") from None


async def deliver(session: aiohttp.ClientSession, smtp: SmtpSettings, channel: dict,
                  payload: dict) -> None:
    """One notice to one channel. The payload holds each channel's rendering: `json`
    (webhooks), `slack` and `email`."""
    kind = channel["type"]
    if kind == "webhook":
        await post_json(session, channel["url"], orjson.dumps(payload["json"]),
                        channel.get("secret"))
    elif kind == "slack":
        await post_json(session, channel["url"], orjson.dumps(payload["slack"]))
    elif kind == "email":
        import asyncio  # loaded by delivery.send_due already, which runs this

        await asyncio.to_thread(send_email, smtp, channel["to"], payload["email"])
    else:
        raise DeliveryError(f"unknown channel type {kind!r}")


# -- renderings -------------------------------------------------------------------------
def _number(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric == "cost":  # cents, and sub-cent digits only when there are some
        if value >= 1:
            return f"${value:,.2f}"
        whole, _, frac = f"{value:.4f}".partition(".")
        return f"${whole}.{frac.rstrip('0').ljust(2, '0')}"
    if metric == "error_rate":
        return f"{value * 100:.1f}%"
    if metric == "latency_p95":
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


def alert_notice(event: dict, dashboard_url: str) -> dict:
    """Every channel's rendering of one alert event (firing or resolved). `event` is the
    webhook JSON: type, alert {id, name, metric, window, ...}, state, value, threshold,
    group, at."""
    alert, metric = event["alert"], event["alert"]["metric"]
    firing = event["state"] == "firing"
    group = f" for {event['group_by']} {event['group']}" if event.get("group") else ""
    headline = (f"{'Firing' if firing else 'Resolved'}: {alert['name']}{group}")
    detail = (f"{metric} over {alert['window']} is {_number(metric, event['value'])} "
              f"({'at or above' if firing else 'back under'} the threshold "
              f"{_number(metric, event['threshold'])})")
    link = ""
    if dashboard_url:  # the requests behind the number, else the alerts page
        view = event.get("view")
        link = (f"{dashboard_url.rstrip('/')}/dashboard/requests?{urlencode(view)}" if view
                else f"{dashboard_url.rstrip('/')}/dashboard/alerts")
    text = f"{headline}\n{detail}\nat {event['at']}" + (f"\n{link}" if link else "")
    slack = f"{':rotating_light:' if firing else ':white_check_mark:'} *{headline}*\n{detail}"
    if link:
        slack += f"\n<{link}|Open in Heliograph>"
    from html import escape  # its entity table is ~0.35 MB: only when an alert fires

    html = (f"<h2>{escape(headline)}</h2><p>{escape(detail)}</p>"
            f"<p>at {escape(event['at'])}</p>"
            + (f'<p><a href="{escape(link)}">Open in Heliograph</a></p>' if link else ""))
    event = {k: v for k, v in event.items() if k != "view"}
    return {"json": {**event, "dashboard_url": link or None},
            "slack": {"text": slack},
            "email": {"subject": f"[Heliograph] {headline}", "text": text, "html": html}}
