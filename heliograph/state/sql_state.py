"""SqlState: shared state in the main database (migration 2 in store/_schema.py).

With SQLite every worker process on the machine opens the same file, so the cache and the
counters are shared by all of them; with PostgreSQL, by every replica too.

Tables: state_cache (key, value, expires_at) and state_events (key, at, expires_at, amount),
one row per counted event, which is what makes the window sliding. Expired rows are
ignored by every read and swept by whichever process gets there first, at most once a
minute per process.

Atomicity across processes: hit_many runs in one write transaction. SQLite's BEGIN
IMMEDIATE (the store's write transaction) holds the database write lock from the start,
so the read-sum-insert cannot interleave with another process's. PostgreSQL takes a
transaction-scoped advisory lock per counter key, in sorted order (no deadlock between two
requests naming the same policies), before reading.

Blocking driver calls run in a worker thread (asyncio.to_thread); the store keeps one
SQLite connection per thread and a connection pool for PostgreSQL.

Outages fail fast, as with Redis (state/base.py): a connection (on SQLite, the write lock)
is waited for at most WAIT_S and an operation at most OP_TIMEOUT_S, then the operation counts as failed (cache
miss, rate limit degraded), instead of a request hanging on the pool's 30 s timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence

from heliograph.state.base import Check, RateHit, SharedState, allows, reset_after

SWEEP_EVERY_S = 60.0
# Longest wait for a database connection, and for a whole operation, on the request path.
WAIT_S = 1.0
OP_TIMEOUT_S = 2.0
# SQLite has no connection to wait for; another process's write lock is its equivalent.
# Half a second is many journal-writer commits, yet several requests queued behind one
# another for the few to_thread workers still answer within about a second.
SQLITE_BUSY_TIMEOUT_S = 0.5


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for a key; a collision only serialises two keys."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big",
                          signed=True)


class SqlState(SharedState):
    backend = "sql"

    def __init__(self, database_url: str, fail_open: bool = True, store=None) -> None:
        super().__init__(fail_open)
        if store is None:
            from heliograph.store import open_store
            store = open_store(database_url)  # migrated: the state tables exist
            self._owns_store = True
        else:
            self._owns_store = False
        if store.dialect.name == "sqlite":
            # Connections of its own, with a busy timeout inside the request's budget: on
            # the store's (30 s, right for the writer) a write lock held by another
            # process kept a thread waiting long after its request had given up.
            from heliograph.store.sqlite import SQLiteStore
            if self._owns_store:
                store.close()
            store = SQLiteStore(database_url, busy_timeout_s=SQLITE_BUSY_TIMEOUT_S)
            self._owns_store = True
        # Uses the store's public transaction API (SQLStore.transaction, execute) so both
        # dialects behave exactly as the rest of the database does.
        self._store = store
        self._postgres = store.dialect.name == "postgres"
        # Unreachable / locked / out of connections / too slow: not programming errors,
        # which raise.
        self.outage_errors = store.outage_errors + (TimeoutError,)
        self._next_sweep = 0.0

    # -- plumbing ---------------------------------------------------------------------
    def _run(self, fn, *args):
        # The thread may outlive the timeout (a driver call cannot be interrupted); its
        # result is then dropped, and the pool's connect/TCP timeouts end it.
        return asyncio.wait_for(asyncio.to_thread(self._with_sweep, fn, *args),
                                OP_TIMEOUT_S)

    def _transaction(self, write: bool):
        return self._store.transaction(write, WAIT_S)

    def _with_sweep(self, fn, *args):
        result = fn(*args)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_S
            try:
                self._sweep(time.time())
            except self.outage_errors:
                pass  # the operation itself succeeded; the next sweep will catch up
        return result

    def _sweep(self, now: float) -> None:
        with self._transaction(write=True) as cur:
            self._store.execute(cur, "DELETE FROM state_cache WHERE expires_at <= ?", (now,))
            self._store.execute(cur, "DELETE FROM state_events WHERE expires_at <= ?",
                                 (now,))
            self._store.execute(cur, "DELETE FROM state_totals WHERE expires_at <= ?",
                                 (now,))

    # -- cache ------------------------------------------------------------------------
    async def _cache_get(self, key: str, now: float) -> bytes | None:
        return await self._run(self._cache_get_sync, key, now)

    def _cache_get_sync(self, key: str, now: float) -> bytes | None:
        with self._transaction(write=False) as cur:
            row = self._store.execute(
                cur, "SELECT value FROM state_cache WHERE key = ? AND expires_at > ?",
                (key, now)).fetchone()
        return None if row is None else bytes(row[0])

    async def _cache_filled(self, keys: Sequence[str], now: float) -> list[bool]:
        return await self._run(self._cache_filled_sync, list(keys), now)

    def _cache_filled_sync(self, keys: list[str], now: float) -> list[bool]:
        marks = ", ".join("?" * len(keys))
        with self._transaction(write=False) as cur:
            rows = self._store.execute(
                cur, f"SELECT key FROM state_cache WHERE key IN ({marks})"
                     " AND expires_at > ?", (*keys, now)).fetchall()
        live = {row[0] for row in rows}
        return [key in live for key in keys]

    async def _cache_set(self, key: str, value: bytes, ttl_s: float, only_if_absent: bool,
                         now: float) -> bool:
        return await self._run(self._cache_set_sync, key, value, ttl_s, only_if_absent, now)

    def _cache_set_sync(self, key: str, value: bytes, ttl_s: float, only_if_absent: bool,
                        now: float) -> bool:
        sql = ("INSERT INTO state_cache (key, value, expires_at) VALUES (?, ?, ?)"
               " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
               " expires_at = excluded.expires_at")
        params: tuple = (key, value, now + ttl_s)
        if only_if_absent:
            # An expired row counts as absent; a live one is left alone (rowcount 0).
            sql += " WHERE state_cache.expires_at <= ?"
            params += (now,)
        with self._transaction(write=True) as cur:
            self._store.execute(cur, sql, params)
            return cur.rowcount > 0

    # -- counters ---------------------------------------------------------------------
    async def _hit_many(self, checks: Sequence[Check], now: float) -> list[RateHit]:
        return await self._run(self._hit_many_sync, checks, now)

    def _hit_many_sync(self, checks: Sequence[Check], now: float) -> list[RateHit]:
        writes = any(c.amount > 0 for c in checks)
        with self._transaction(write=writes) as cur:
            if writes and self._postgres:
                for lock in sorted({_lock_id(c.key) for c in checks}):
                    self._store.execute(cur, "SELECT pg_advisory_xact_lock(?)", (lock,))
            windows = [self._window(cur, c, now) for c in checks]
            verdicts = [allows(used, c.quota, c.amount) for c, (used, _) in
                        zip(checks, windows)]
            if writes and all(verdicts):
                rows = [(c.key, now, now + c.window_s, float(c.amount))
                        for c in checks if c.amount > 0]
                self._store.executemany(
                    cur, "INSERT INTO state_events (key, at, expires_at, amount)"
                         " VALUES (?, ?, ?, ?)", rows)
                windows = [(used + c.amount, now if oldest is None and c.amount > 0
                            else oldest) for c, (used, oldest) in zip(checks, windows)]
        return [RateHit(ok, float(used), max(0.0, float(c.quota) - used),
                        reset_after(oldest, c.window_s, now))
                for c, ok, (used, oldest) in zip(checks, verdicts, windows)]

    def _window(self, cur, check: Check, now: float) -> tuple[float, float | None]:
        used, oldest = self._store.execute(
            cur, "SELECT COALESCE(SUM(amount), 0), MIN(at) FROM state_events"
                 " WHERE key = ? AND at > ?",
            (check.key, now - check.window_s)).fetchone()
        return float(used), oldest

    async def _add(self, key: str, window_s: float, amount: float, now: float) -> None:
        await self._run(self._add_sync, key, window_s, amount, now)

    def _add_sync(self, key: str, window_s: float, amount: float, now: float) -> None:
        with self._transaction(write=True) as cur:
            self._store.execute(cur, "INSERT INTO state_events (key, at, expires_at, amount)"
                                      " VALUES (?, ?, ?, ?)",
                                 (key, now, now + window_s, float(amount)))

    # -- plain totals (migration 7) -----------------------------------------------------
    async def _add_total(self, key: str, amount: float, expires_at: float) -> None:
        await self._run(self._add_total_sync, key, amount, expires_at)

    def _add_total_sync(self, key: str, amount: float, expires_at: float) -> None:
        # One atomic upsert on both databases: concurrent adds never lose one another. A
        # row left over from an expired period (not yet swept) starts again from 0.
        with self._transaction(write=True) as cur:
            self._store.execute(
                cur, "INSERT INTO state_totals (key, amount, expires_at) VALUES (?, ?, ?)"
                     " ON CONFLICT (key) DO UPDATE SET amount = CASE WHEN"
                     " state_totals.expires_at <= ? THEN excluded.amount"
                     " ELSE state_totals.amount + excluded.amount END,"
                     " expires_at = excluded.expires_at",
                (key, amount, expires_at, time.time()))

    async def _totals(self, keys: Sequence[str], now: float) -> list[float]:
        return await self._run(self._totals_sync, keys, now)

    def _totals_sync(self, keys: Sequence[str], now: float) -> list[float]:
        marks = ", ".join("?" * len(keys))
        with self._transaction(write=False) as cur:
            rows = self._store.execute(
                cur, f"SELECT key, amount FROM state_totals WHERE key IN ({marks})"
                     " AND expires_at > ?", (*keys, now)).fetchall()
        found = {key: float(amount) for key, amount in rows}
        return [found.get(key, 0.0) for key in keys]

    async def close(self) -> None:
        if self._owns_store:
            await asyncio.to_thread(self._store.close)
