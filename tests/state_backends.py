"""Real SharedState backends for tests, and a worker that hammers one from another process.

Shared by tests/state and tests/proxy. PostgreSQL
needs HELIOGRAPH_TEST_POSTGRES_URL and Redis HELIOGRAPH_TEST_REDIS_URL; without them those
cases are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import time
import uuid
from dataclasses import dataclass

import pytest
from servers import copy_of, empty_postgres_tables

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HELIOGRAPH_TEST_REDIS_URL")
KINDS = ["sqlite", "postgres", "redis"]


@dataclass(frozen=True)
class Backend:
    """Everything needed to open the same store in this process or a child (picklable)."""
    kind: str
    url: str
    prefix: str = "heliograph:"

    def open(self, fail_open: bool = True, redis_timeout_s: float = 1.0):
        """Open inside the event loop that will use it (redis.asyncio binds to a loop)."""
        if self.kind == "redis":
            from heliograph.state.redis_state import RedisState
            return RedisState(self.url, fail_open=fail_open, prefix=self.prefix,
                              timeout_s=redis_timeout_s)
        from heliograph.state.sql_state import SqlState
        return SqlState(self.url, fail_open=fail_open)


def make_backend(kind: str, tmp_path, request):
    """A generator: yields a Backend on an empty store, then cleans it up. SQLite is a
    copy of the session's migrated file, PostgreSQL shares the session's migrated schema,
    emptied first (both fixtures in tests/conftest.py)."""
    if kind == "sqlite":
        yield Backend("sqlite", copy_of(request.getfixturevalue("migrated_sqlite_file"),
                                        tmp_path / "state.db"))
        return
    if kind == "postgres":
        if not POSTGRES_URL:
            pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL state skipped")
        url = request.getfixturevalue("migrated_postgres_url")
        empty_postgres_tables(url)
        yield Backend("postgres", url)
        return
    if not REDIS_URL:
        pytest.skip("HELIOGRAPH_TEST_REDIS_URL not set: Redis state skipped")
    import redis
    prefix = f"hgtest:{uuid.uuid4().hex}:"
    try:
        yield Backend("redis", REDIS_URL, prefix)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


# -- expiry without long sleeps ---------------------------------------------------------------

# TTLs an expiry test tries in turn: the short one keeps the fast tier fast; the long one
# is the fallback for a machine too loaded to read an entry back well within 0.2 s.
EXPIRY_TTLS_S = (0.2, 1.0)


class ExpiryRound:
    """Times one "store with a TTL, read it back, read it again once expired" round.

    Start it just before storing. After the first read, `read_in_time()` says whether
    that read came back well within the TTL; if not (a loaded machine), the round proves
    nothing about "before expiry" and the test retries, on a fresh key, with the next TTL
    of EXPIRY_TTLS_S (the last one is trusted as is). The test never gets weaker, only
    slower when the machine is slow."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.is_last = ttl_s == EXPIRY_TTLS_S[-1]
        self.started = time.monotonic()
        self.first_read_done = self.started

    def read_in_time(self) -> bool:
        self.first_read_done = time.monotonic()
        return self.is_last or self.first_read_done - self.started < self.ttl_s / 2

    async def sleep_past_expiry(self) -> None:
        # The entry's expiry was set before the first read finished, so a TTL after that
        # (plus a little for the store's rounding) is surely past it.
        wake = self.first_read_done + self.ttl_s + 0.05
        await asyncio.sleep(max(0.0, wake - time.monotonic()))


def closed_port_url() -> str:
    """A redis:// URL on which nothing listens (an outage)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def run(coro):
    return asyncio.run(coro)


# -- several processes at once ------------------------------------------------------------

def _worker(backend: Backend, mode: str, args: dict, n: int, start, results) -> None:
    """`start`: a Barrier all workers pass together."""
    async def go():
        # Fail closed, with time to spare: on a loaded machine a call past the 1 s timeout
        # would fail open and be counted as allowed, hiding what the test measures.
        state = backend.open(fail_open=False, redis_timeout_s=15.0)
        await state.used("warm-up", 60)  # connect and migrate before the start line
        try:
            await asyncio.to_thread(start.wait, 30)
            if mode == "hit":
                hits = await asyncio.gather(*(
                    state.hit(args["key"], args["window_s"], args["quota"])
                    for _ in range(n)))
                return sum(h.allowed for h in hits)
            from heliograph.errors import RateLimited
            from heliograph.proxy.auth import Principal
            from heliograph.proxy.headers import RequestOptions
            from heliograph.proxy.ratelimit import RateLimiter
            limiter = RateLimiter(state)
            principal = Principal("key1", args["organization"], False)
            options = RequestOptions(ratelimit_policy=args["policy"])

            async def one():
                try:
                    await limiter.check(principal, options, {"user_id": args["user"],
                                                             "properties": {}})
                    return 1
                except RateLimited:
                    return 0
            return sum(await asyncio.gather(*(one() for _ in range(n))))
        finally:
            await state.close()
    try:
        results.put(("ok", asyncio.run(go())))
    except BaseException as exc:  # report, so the parent fails with the reason
        results.put(("error", repr(exc)))


def allowed_across_processes(backend: Backend, mode: str, args: dict,
                             processes: int = 2, per_process: int = 20) -> int:
    """Start `processes` workers, release them together, each firing `per_process`
    concurrent attempts; the total number allowed."""
    ctx = multiprocessing.get_context("spawn")
    # A barrier, not an event: each worker is past its slow start-up (imports, connect,
    # migrate) before any fires, so the attempts really overlap.
    start, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(backend, mode, args, per_process, start,
                                                 results)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=90) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    errors = [detail for status, detail in outcomes if status != "ok"]
    assert not errors, errors
    return sum(detail for _status, detail in outcomes)
