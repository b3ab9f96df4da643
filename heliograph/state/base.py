"""SharedState: the few operations the cache and the rate limiter need, and what every
backend does when its store is unreachable.

Outages. A backend lists the exceptions that mean "the store is unreachable or failing"
(`outage_errors`). When one is raised the operation does not fail the request: the error
is logged (the first at WARNING with its traceback, then at most one summary line per
LOG_EVERY_S saying how many were suppressed, and one INFO line on recovery), and for
RETRY_AFTER_S afterwards operations do not even try the store; after that one operation
at a time runs in the background to find out whether the store is back, while its
request gets the fallback at once. So a dead store costs a request nothing instead of a
connect timeout each time. Meanwhile:
  - cache_get → None (a miss), cache_filled → all False, cache_set → False (skipped);
  - add → skipped, used → None (unknown);
  - hit → RateHit(degraded=True): allowed when `fail_open` (the default: an outage of the
    shared counters must not take the gateway down with it), denied when not. The rate
    limiter turns `degraded` into the response header `Helicone-RateLimit-Status: degraded`.

Rate-limit windows are sliding: an event added at time t counts towards `used` while
now - window_s < t <= now, i.e. it leaves the window exactly window_s seconds later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

log = logging.getLogger("heliograph.state")

LOG_EVERY_S = 30.0
RETRY_AFTER_S = 1.0


class RateHit(NamedTuple):
    allowed: bool
    used: float        # in the window, including this hit when it was allowed
    remaining: float   # quota - used, never below 0
    reset_s: float     # until the oldest counted event leaves the window (window_s if none)
    degraded: bool = False  # the store was unreachable; `allowed` is the fail_open choice


class Check(NamedTuple):
    """One counter in an all-or-nothing hit_many()."""
    key: str
    window_s: float
    quota: float
    amount: float = 1.0  # 0: only look (a check that adds nothing)


def allows(used: float, quota: float, amount: float) -> bool:
    # `used < quota` makes a zero-amount check fail once the quota is used up (a cents
    # policy stops a user once their cost reaches it); `used + amount <= quota` keeps a
    # request from overshooting.
    return used < quota and used + amount <= quota


def reset_after(oldest: float | None, window_s: float, now: float) -> float:
    if oldest is None:
        return float(window_s)
    return max(0.0, oldest + window_s - now)


class SharedState:
    """Subclasses implement the underscore methods; the public ones add outage handling."""

    backend = "abstract"
    outage_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, fail_open: bool = True) -> None:
        self.fail_open = fail_open
        self._down_until = 0.0      # monotonic; skip the store until then
        self._failing = False
        self._suppressed = 0
        self._next_log = 0.0
        self._probe: asyncio.Task | None = None  # the background check of a failing store

    # -- what a backend provides (now = time.time() seconds) ----------------------
    async def _cache_get(self, key: str, now: float) -> bytes | None:
        raise NotImplementedError

    async def _cache_filled(self, keys: Sequence[str], now: float) -> list[bool]:
        raise NotImplementedError

    async def _cache_set(self, key: str, value: bytes, ttl_s: float, only_if_absent: bool,
                         now: float) -> bool:
        raise NotImplementedError

    async def _hit_many(self, checks: Sequence[Check], now: float) -> list[RateHit]:
        raise NotImplementedError

    async def _add(self, key: str, window_s: float, amount: float, now: float) -> None:
        raise NotImplementedError

    async def _add_total(self, key: str, amount: float, expires_at: float) -> None:
        raise NotImplementedError

    async def _totals(self, keys: Sequence[str], now: float) -> list[float]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------
    async def cache_get(self, key: str) -> bytes | None:
        """The value stored under key, or None when absent, expired or unreachable."""
        return await self._guard("cache_get", self._cache_get(key, time.time()), None)

    async def cache_filled(self, keys: Sequence[str]) -> list[bool]:
        """For each key, whether it holds a live (unexpired) value; one round trip."""
        return await self._guard("cache_filled", self._cache_filled(keys, time.time()),
                                 [False] * len(keys))

    async def cache_set(self, key: str, value: bytes, ttl_s: float,
                        only_if_absent: bool = False) -> bool:
        """Store value for ttl_s seconds. With only_if_absent, a live value already there
        wins and False is returned. False also when the store is unreachable."""
        if ttl_s <= 0:
            return False
        return await self._guard(
            "cache_set", self._cache_set(key, bytes(value), float(ttl_s), only_if_absent,
                                         time.time()), False)

    async def hit(self, key: str, window_s: float, quota: float, amount: float = 1.0,
                  now: float | None = None) -> RateHit:
        """Atomically: if `amount` more fits in the sliding window, add it; report usage."""
        return (await self.hit_many([Check(key, window_s, quota, amount)], now))[0]

    async def hit_many(self, checks: Sequence[Check], now: float | None = None
                       ) -> list[RateHit]:
        """hit() over several counters at once, all or nothing: amounts are added only
        if every check allows, so a request refused by one policy uses no quota of the
        others. Each result's `allowed` is that counter's own verdict."""
        if not checks:
            return []
        now = time.time() if now is None else now
        degraded = [RateHit(self.fail_open, 0.0, float(c.quota) if self.fail_open else 0.0,
                            float(c.window_s), True) for c in checks]
        return await self._guard("hit", self._hit_many(list(checks), now), degraded)

    async def add(self, key: str, window_s: float, amount: float,
                  now: float | None = None) -> bool:
        """Count `amount` (cents, tokens) unconditionally; False if it could not be."""
        if amount <= 0:
            return False
        now = time.time() if now is None else now

        async def run():
            await self._add(key, window_s, amount, now)
            return True
        return await self._guard("add", run(), False)

    async def used(self, key: str, window_s: float, now: float | None = None
                   ) -> float | None:
        """What the sliding window holds now; None when the store is unreachable."""
        now = time.time() if now is None else now
        hit = await self.hit_many([Check(key, window_s, 0, 0)], now)
        return None if hit[0].degraded else hit[0].used

    async def add_total(self, key: str, amount: float, expires_at: float) -> bool:
        """Add to a plain running total that lives until expires_at (Unix seconds): a
        calendar period's budget spend, one key per period. Reading it costs the same
        however many amounts were added, unlike a sliding window. False if it could not
        be added."""
        if amount <= 0:
            return False

        async def run():
            await self._add_total(key, float(amount), float(expires_at))
            return True
        return await self._guard("add_total", run(), False)

    async def totals(self, keys: Sequence[str]) -> list[float] | None:
        """Each key's live total (0 when absent or expired), in one round trip; None when
        the store is unreachable."""
        if not keys:
            return []
        return await self._guard("totals", self._totals(list(keys), time.time()), None)

    @property
    def healthy(self) -> bool:
        return not self._failing

    # -- outage handling --------------------------------------------------------------
    async def _guard(self, op: str, coro, fallback):
        if self._failing:
            now = time.monotonic()
            if now < self._down_until or self._probe is not None:
                coro.close()  # never started: nothing to clean up, no "never awaited"
                self._note_suppressed()
                return fallback
            # Whether the store is back is found out in the background, by this
            # operation: no request waits on a store that was just failing.
            self._down_until = now + RETRY_AFTER_S
            self._probe = asyncio.ensure_future(self._probe_with(op, coro))
            return fallback
        try:
            return await coro
        except self.outage_errors as exc:
            self._outage(op, exc)
            return fallback

    async def _probe_with(self, op: str, coro) -> None:
        try:
            await coro
        except self.outage_errors as exc:
            self._outage(op, exc)
        except Exception:
            log.exception("%s shared state: %s failed while probing", self.backend, op)
        else:
            self._failing = False
            log.info("%s shared state reachable again (%d failures suppressed)",
                     self.backend, self._suppressed)
            self._suppressed = 0
        finally:
            self._probe = None

    def _outage(self, op: str, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + RETRY_AFTER_S
        if not self._failing:
            self._failing = True
            self._next_log = now + LOG_EVERY_S
            log.warning("%s shared state unreachable during %s: %s; cache lookups miss, "
                        "stores are skipped, rate limits fail %s", self.backend, op, exc,
                        "open" if self.fail_open else "closed", exc_info=exc)
            return
        self._note_suppressed()

    def _note_suppressed(self) -> None:
        self._suppressed += 1
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + LOG_EVERY_S
            log.warning("%s shared state still unreachable (%d failures in the last "
                        "%.0f s)", self.backend, self._suppressed, LOG_EVERY_S)
            self._suppressed = 0
