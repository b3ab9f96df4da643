"""One proxied request's state: `Arrival` as it comes in (nobody known, nothing to log),
then `Flow` once the caller is authenticated and its record opened — so every field a step
reads after that is there, never Optional."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from heliograph.asgi import Request, encode_headers, send_bytes
from heliograph.errors import GatewayError, ProviderStatusError
from heliograph.providers.answer_headers import relayed_raw
from heliograph.providers.base import Operation
from heliograph.proxy.auth import Principal
from heliograph.proxy.exchange import Exchange
from heliograph.proxy.front import Front
from heliograph.proxy.headers import RequestOptions

if TYPE_CHECKING:
    from heliograph.app import Gateway

# ASGI's callables, as uvicorn hands them to the app.
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class Arrival:
    """A request as it arrives: no caller known yet, so nothing to log."""

    def __init__(self, gw: Gateway, request: Request, send: Send, front: Front,
                 operation: Operation) -> None:
        self.gw = gw
        self.request = request
        self.send = send
        self.front = front
        self.operation = operation
        self.t0 = time.perf_counter()
        self.wall = time.time()

    async def refuse(self, error: GatewayError) -> None:
        """Answer without a record: an unauthenticated caller must not write to the log."""
        await send_bytes(self.send, error.status, self.front.error_body(error),
                         encode_headers(error.headers))


class Flow:
    """One authenticated request: what every step needs, in one place, its record open."""

    def __init__(self, arrival: Arrival, principal: Principal, options: RequestOptions
                 ) -> None:
        self.gw = arrival.gw
        self.request = arrival.request
        self.send = arrival.send
        self.front = arrival.front
        self.operation = arrival.operation
        self.principal = principal
        self.options = options
        self.exchange = Exchange(arrival.gw.sinks, arrival.request.path, principal, options,
                                 arrival.t0, arrival.wall)
        self.body: dict = {}        # as the caller sent it
        self.openai_body: dict = {}
        self.raw: bytes | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []

    def response_headers(self, upstream: dict[str, str]) -> list[tuple[bytes, bytes]]:
        out = self._helicone_headers(b"success")
        out += relayed_raw(upstream)
        out += self.extra_headers
        return out

    def _helicone_headers(self, status: bytes) -> list[tuple[bytes, bytes]]:
        """Helicone-Id, and what Helicone's clients read besides: Helicone-Status
        (`success` when a provider or the cache answered, `error` when the gateway
        refused), Helicone-Provider and Helicone-Model (who answered, when one did)."""
        rec = self.exchange.record
        out = [(b"helicone-id", self.exchange.id.encode()), (b"helicone-status", status)]
        if rec["provider"]:
            out.append((b"helicone-provider", rec["provider"].encode("latin-1", "replace")))
        model = rec["model_used"] or rec["model"]
        # The caller's model name may be what a 400 refuses (a CR/LF in it): never echoed.
        if model and model.isprintable() and len(model) <= 256:
            out.append((b"helicone-model", model.encode("latin-1", "replace")))
        return out

    async def fail(self, error: GatewayError) -> None:
        exchange = self.exchange
        exchange.fail(error)
        exchange.log(error.status)
        headers = encode_headers(error.headers)
        # A provider's own error, relayed, is a success of the proxy's (as Helicone says).
        headers += self._helicone_headers(
            b"success" if isinstance(error, ProviderStatusError) else b"error")
        headers += self.extra_headers
        await send_bytes(self.send, error.status, self.front.error_body(error), headers)
