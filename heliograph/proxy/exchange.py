"""One request's life as a log record: opened once the caller is authenticated, closed
exactly once, then handed to the record sinks, the journal first (never awaited)."""

from __future__ import annotations

import os
import time
from typing import Any

from heliograph import costs
from heliograph.errors import GatewayError
from heliograph.providers.answer_headers import ratelimit_from
from heliograph.proxy.auth import Principal
from heliograph.proxy.headers import RequestOptions
from heliograph.records import Record, new_record
from heliograph.sinks import RecordSinks


class _RandomHex:
    """os.urandom drawn a page at a time, as hex digits: one getrandom() syscall per 431
    ids instead of one per request. Emptied in a forked child, which must never repeat
    its parent's ids."""

    PAGE = 4096   # bytes: 8,192 hex digits

    def __init__(self) -> None:
        self._page = ""
        self._pos = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._page, self._pos = "", 0

    def take19(self) -> str:
        pos = self._pos
        if pos + 19 > len(self._page):
            self._page, pos = os.urandom(self.PAGE).hex(), 0
        self._pos = pos + 19
        return self._page[pos:pos + 19]


_random_hex = _RandomHex()
# The hex digit holding the RFC 9562 variant (binary 10xx): a random digit mapped onto
# 8, 9, a or b keeps its two low random bits.
_VARIANT_DIGIT = dict(zip("0123456789abcdef", "89ab" * 4))


def fast_uuid7(at: float | None = None) -> str:
    """A version-7 UUID string (RFC 9562: the Unix time in milliseconds, then 74 random
    bits), as cheap to make as the random version-4 ids it replaced (it is made for every
    request) and several times cheaper than str(uuid.uuid4()). Time-ordered so every
    index keyed by the request id grows at its right edge: with random ids, each record
    dirtied a page of each such index of its own once the index outgrew the cache. `at`:
    the request's wall time (time.time()) when the caller has it. Ids of one millisecond
    are in random order: the id is a key, not a clock to sort by."""
    t = f"{int((time.time() if at is None else at) * 1000):012x}"
    x = _random_hex.take19()
    return f"{t[:8]}-{t[8:]}-7{x[:3]}-{_VARIANT_DIGIT[x[3]]}{x[4:7]}-{x[7:]}"


# Property names the tutorial tags users with (Helicone-Property-UserId), lower-cased.
USER_PROPERTIES = ("userid", "user-id", "user")


class Exchange:
    """An opened request's record: filled while the request runs, closed exactly once
    (log), then handed to the sinks. Only made once the caller is authenticated, so the
    record and options are always there."""

    def __init__(self, sinks: RecordSinks, path: str, principal: Principal,
                 options: RequestOptions, t0: float, wall: float) -> None:
        self.sinks = sinks
        self.t0 = t0
        self.wall = wall
        self.options = options
        self.logged = False
        self._attempt_t0 = 0.0
        rec = new_record(options.request_id or fast_uuid7(wall), wall, path)
        rec["organization"] = principal.organization
        rec["key_id"] = principal.key_id
        rec["user_id"] = options.user_id
        rec["properties"] = options.properties
        rec["session_id"] = options.session_id
        rec["session_path"] = options.session_path
        rec["session_name"] = options.session_name
        rec["requested_id"] = options.replaced_request_id
        rec["prompt_id"] = options.prompt_id
        rec["model_override"] = options.model_override
        self.record: Record = rec
        self.id: str = rec["id"]

    def take_fresh_id(self) -> None:
        """The caller's Helicone-Request-Id is already used: a fresh one, so no record is
        dropped (PRODUCT.md); Helicone-Id tells the caller which, the record the one asked."""
        self.record["requested_id"] = self.record["id"]
        self.id = self.record["id"] = fast_uuid7()

    def find_user(self, body: Any) -> None:
        """The user when no Helicone-User-Id names one: the body's `user`, else a property
        UserId / User-Id / User (names are case-insensitive, as header names are) — set
        at write time, so user analytics and s=user limits see it."""
        rec = self.record
        if rec["user_id"] is not None:
            return
        user = body.get("user") if isinstance(body, dict) else None
        if isinstance(user, str) and user:
            rec["user_id"] = user
            return
        if rec["properties"]:
            lowered = {name.lower(): value for name, value in rec["properties"].items()}
            for name in USER_PROPERTIES:
                if lowered.get(name):
                    rec["user_id"] = lowered[name]
                    return

    def set_request(self, body: Any) -> None:
        if not self.options.omit_request:
            self.record["request"] = body

    def set_response(self, body: Any) -> None:
        if not self.options.omit_response:
            self.record["response"] = body

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 3)

    def start_attempt(self) -> None:
        self._attempt_t0 = time.perf_counter()

    def end_attempt(self, provider: str, model: str, status: int, error: str | None = None,
                    headers: dict[str, str] | None = None, index: int = 0) -> None:
        rec = self.record
        rec["attempts"].append({
            "model": model, "provider": provider, "status": status,
            "latency_ms": round((time.perf_counter() - self._attempt_t0) * 1000, 3),
            "error": error})
        rec["provider"] = provider
        rec["model_used"] = model
        rec["fallback_index"] = index
        if headers:
            limits = ratelimit_from(headers)
            if limits:
                rec["ratelimit"] = limits

    def set_usage(self, usage_obj: object, model_used: str | None = None) -> None:
        rec = self.record
        if model_used:
            rec["model_used"] = model_used
        if not isinstance(usage_obj, dict):
            # No usage reported (e.g. a stream cut short): tokens and cost stay unknown
            # rather than a silent 0.
            rec["cost_known"] = False
            return
        # Priced at the request's arrival, the record's created_at; as the model
        # Helicone-Model-Override names when there is one (a deployment name, say).
        model = self.options.model_override or rec["model_used"] or rec["model"] or ""
        rec.update(costs.price_usage(rec["provider"] or "", model,
                                     costs.usage_from_openai(usage_obj), self.wall))

    def fail(self, error: GatewayError) -> None:
        self.record["status"] = error.status
        self.record["error"] = error.message

    def log(self, status: int, ttft_ms: float | None = None,
            latency_ms: float | None = None) -> None:
        """Close the record and hand it to the sinks (the journal first). Called before
        the last byte is sent, so a caller who saw a complete answer always has a
        record, even if we die next. latency_ms: as measured elsewhere (a call logged
        through /custom/v1/log), else the time since this request arrived."""
        if self.logged:
            return
        self.logged = True
        rec = self.record
        rec["status"] = status
        rec["latency_ms"] = self.elapsed_ms() if latency_ms is None else latency_ms
        rec["ttft_ms"] = ttft_ms
        self.sinks.accept(rec)
