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
import uuid
from dataclasses import dataclass

import pytest
from servers import postgres_schema

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HELIOGRAPH_TEST_REDIS_URL")
KINDS = ["sqlite", "postgres", "redis"]


@dataclass(frozen=True)
class Backend:
    """Everything needed to open the same store in this process or a child (picklable)."""
    kind: str
    url: str
    prefix: str = "heliograph:"

    def open(self, fail_open: bool = True):
        """Open inside the event loop that will use it (redis.asyncio binds to a loop)."""
        if self.kind == "redis":
            from heliograph.state.redis_state import RedisState
            return RedisState(self.url, fail_open=fail_open, prefix=self.prefix)
        from heliograph.state.sql_state import SqlState
        return SqlState(self.url, fail_open=fail_open)


def make_backend(kind: str, tmp_path):
    """A generator: yields a Backend on an empty store, then cleans it up."""
    if kind == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'state.db'}")
        return
    if kind == "postgres":
        if not POSTGRES_URL:
            pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL state skipped")
        with postgres_schema(POSTGRES_URL, "hg_state_test_") as url:
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
        state = backend.open()
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
