"""Who is calling: a gateway key, in one of the two Helicone modes.

- Gateway mode: `Authorization: Bearer <gateway key>`; provider keys held by the gateway.
- Bring-your-own-key: `Helicone-Auth: Bearer <gateway key>`, and `Authorization` carries the
  caller's provider key, which is passed upstream as it is.
On /v1/messages the key may also arrive as `x-api-key` (what the Anthropic SDK sends).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from heliograph.errors import Forbidden, ServiceUnavailable, Unauthorized
from heliograph.keys import KEY_PREFIX, hash_key

log = logging.getLogger("heliograph.auth")

# How long a looked-up key is trusted before the store is asked again; bounds how long a
# revoked key keeps working in a process that already saw it (while the store answers).
KEY_CACHE_TTL_S = 10.0
# The longest a request waits on the key store. Past it (or on a connection error) the
# store counts as unreachable: keys seen before keep working on their cached row, which
# is the point of journaling records instead of writing them on the request path.
LOOKUP_WAIT_S = 2.0
# After a failed lookup, requests do not even try the store for this long.
RETRY_AFTER_S = 1.0
MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True)
class Principal:
    key_id: str
    organization: str
    admin: bool
    # The caller's own provider credential (BYOK), as the header value to send upstream.
    provider_authorization: str | None = None
    # The model names this key may call (None: any), checked by check_models.
    allowed_models: tuple[str, ...] | None = None


def check_models(principal: Principal, models: list[str]) -> None:
    """A key limited to some models is refused (403) any other, fallbacks included, before
    a provider is called. Names are compared as the caller writes them."""
    allowed = principal.allowed_models
    if allowed is None:
        return
    for model in models:
        if model not in allowed:
            raise Forbidden(f"this gateway key may not call model {model!r}; it may call: "
                            f"{', '.join(sorted(allowed)) or 'no model'}",
                            code="model_not_allowed")


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return value or None


def _is_gateway_key(value: str, gateway_key: str) -> bool:
    key = _bearer(value) or ""
    return key == gateway_key or key.startswith(KEY_PREFIX)


class Authenticator:
    """Key lookups that never make a request wait on an unreachable store.

    While the store answers, an entry older than KEY_CACHE_TTL_S is looked up again
    before use, so a revocation holds within that time. Once a lookup fails, the store
    counts as unreachable: every key seen before is served on its last row at once, an
    unknown key gets a 503, and a single background lookup at a time (at most one per
    RETRY_AFTER_S) finds out when the store is back.

    One lookup per key at a time: the requests that find a key's entry stale while its
    lookup is under way wait for that lookup's answer. Under load every request in flight
    found the entry stale together each KEY_CACHE_TTL_S, and each sent its own lookup to
    a thread: the default executor grew to its 6 threads, each with a SQLite connection
    (the store keeps one per thread) and a malloc arena of its own, ~1-2 MB of a worker's
    peak RSS for the same row read six times (bench/README.md, session 17)."""

    def __init__(self, store):
        self.store = store
        # key → (fresh until, (row, its Principal with the gateway's provider keys)). An
        # entry outlives its freshness: while the store is unreachable the last row seen is
        # used. The Principal is made once per row, not per request (it is immutable).
        self._cache: dict[str, tuple[float, tuple[Any, Principal]]] = {}
        self._failing = False
        self._next_probe = 0.0  # monotonic
        self._probe: asyncio.Task | None = None
        # key → the lookup under way for it (_shared_find).
        self._finding: dict[str, asyncio.Future] = {}
        self._outage_errors: tuple[type[BaseException], ...] = (
            getattr(store, "outage_errors", ()) + (TimeoutError,))

    async def lookup(self, key: str) -> tuple[Any, Principal] | None:
        """The key's row and its Principal (without a BYOK credential), or None when the
        key is unknown or revoked."""
        # Cached by the key itself (it is in this process's memory anyway, in the request)
        # so a hit costs no hashing.
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        if self._failing:
            self._probe_later(key, now)
            return self._stale(hit)
        try:
            return await self._shared_find(key)
        except self._outage_errors as exc:
            self._fail(exc)
            return self._stale(hit)

    def _shared_find(self, key: str) -> asyncio.Future:
        """The key's lookup under way, or a new one: its row remembered, or its error.
        Shielded, so a caller that goes away does not cancel it for the others."""
        finding = self._finding.get(key)
        if finding is None:
            finding = self._finding[key] = asyncio.ensure_future(self._find_and_remember(key))
            finding.add_done_callback(self._found)
        return asyncio.shield(finding)

    async def _find_and_remember(self, key: str):
        try:
            return self._remember(key, await self._find(key))
        finally:
            del self._finding[key]

    @staticmethod
    def _found(finding: asyncio.Future) -> None:
        # Its waiters may all have gone (shielded): its error is then read here, not
        # reported as never retrieved.
        if not finding.cancelled():
            finding.exception()

    async def _find(self, key: str):
        return await asyncio.wait_for(
            asyncio.to_thread(self.store.find_key, hash_key(key), LOOKUP_WAIT_S),
            LOOKUP_WAIT_S)

    def _remember(self, key: str, row):
        if row is None:
            self._cache.pop(key, None)  # revoked (or never valid): forget it now
            return None
        if len(self._cache) >= MAX_CACHED_KEYS:
            # Drop the oldest half (dicts keep insertion order) rather than everything:
            # clearing all during an outage would lock every caller out.
            for old in list(self._cache)[:MAX_CACHED_KEYS // 2]:
                del self._cache[old]
        found = (row, Principal(row.id, row.organization, row.admin, None, row.allowed_models))
        self._cache[key] = (time.monotonic() + KEY_CACHE_TTL_S, found)
        return found

    def _fail(self, exc: BaseException) -> None:
        if not self._failing:
            log.warning("key store unreachable (%s): keys seen before keep working on "
                        "their cached entry, unknown keys get 503", exc or "timeout")
        self._failing = True
        self._next_probe = time.monotonic() + RETRY_AFTER_S

    def _probe_later(self, key: str, now: float) -> None:
        if now < self._next_probe or (self._probe is not None and not self._probe.done()):
            return
        self._next_probe = now + RETRY_AFTER_S
        self._probe = asyncio.ensure_future(self._probe_store(key))

    async def _probe_store(self, key: str) -> None:
        try:
            row = await self._find(key)
        except self._outage_errors as exc:
            self._fail(exc)
            return
        except Exception:  # a bug, not an outage: say so, keep serving cached keys
            log.exception("key store probe failed")
            return
        self._failing = False
        log.warning("key store reachable again")
        self._remember(key, row)

    @staticmethod
    def _stale(hit):
        if hit is not None:
            return hit[1]
        raise ServiceUnavailable("the gateway cannot check this key right now: its key "
                                 "store is unreachable; retry shortly",
                                 headers={"retry-after": "1"})

    async def authenticate(self, headers: dict[str, str], allow_x_api_key: bool = False
                           ) -> Principal:
        helicone_auth = _bearer(headers.get("helicone-auth"))
        authorization = headers.get("authorization")
        gateway_key: str | None
        if helicone_auth is not None:
            gateway_key = helicone_auth
            provider_auth = authorization if _bearer(authorization) else None
            if provider_auth is None and allow_x_api_key and headers.get("x-api-key"):
                provider_auth = headers["x-api-key"]
            if provider_auth is not None and _is_gateway_key(provider_auth, gateway_key):
                # The gateway key sent twice (or another gateway key): never a provider's
                # key, and never forwarded to one; the call uses the gateway's own keys.
                provider_auth = None
        else:
            gateway_key = _bearer(authorization)
            if gateway_key is None and allow_x_api_key:
                gateway_key = _bearer(headers.get("x-api-key"))
            provider_auth = None
        if gateway_key is None:
            raise Unauthorized("Missing gateway key: send 'Authorization: Bearer <key>' "
                               "(or 'Helicone-Auth: Bearer <key>' with your provider key "
                               "in Authorization)")
        found = await self.lookup(gateway_key)
        if found is None:
            raise Unauthorized("Invalid gateway key")
        row, principal = found
        # The expiry is checked on the cached row, so it holds to the second.
        if row.expires_ts is not None and row.expires_ts <= time.time():
            raise Unauthorized(f"this gateway key expired at {row.expires_at}",
                               code="expired_api_key")
        if provider_auth is None:
            return principal
        return Principal(row.id, row.organization, row.admin, provider_auth,
                         row.allowed_models)
