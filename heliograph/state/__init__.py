"""Shared state for the response cache and rate limits, seen by every worker process.

Two backends behind one interface (base.SharedState), chosen by configuration and
imported lazily so the Redis client loads only when configured:
  - settings.redis_url set → RedisState: shared by every replica that uses that Redis;
  - otherwise → SqlState on settings.database_url: shared by all workers on the machine
    (SQLite file) or all replicas (PostgreSQL).

`fail_open` (default True) decides what a rate limit does while its store is unreachable:
allow the request and mark the response `Helicone-RateLimit-Status: degraded`, or refuse
it with a 429. Cache lookups then miss and stores are skipped either way (see base.py).
It is read from settings.ratelimit_fail_open when that setting exists.
"""

from __future__ import annotations

from heliograph.state.base import Check, RateHit, SharedState

__all__ = ["Check", "RateHit", "SharedState", "open_state"]


def open_state(settings, fail_open: bool | None = None, store=None) -> SharedState:
    """The shared state for these settings. `store`: an already-open SQL store to share
    (SqlState only); by default SqlState opens (and migrates) its own."""
    if fail_open is None:
        fail_open = bool(getattr(settings, "ratelimit_fail_open", True))
    if settings.redis_url:
        from heliograph.state.redis_state import RedisState
        return RedisState(settings.redis_url, fail_open=fail_open)
    from heliograph.state.sql_state import SqlState
    return SqlState(settings.database_url, fail_open=fail_open, store=store)
