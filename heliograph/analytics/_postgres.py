"""The analytics side's own PostgreSQL pool, apart from the store's (key lookups and the
writer), with a server-side statement_timeout so no query can run away with the
database. Imported only for a postgres URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from heliograph.analytics.errors import DatabaseUnavailable, QueryTimeout
from heliograph.store.postgres import POSTGRES, SESSION_OPTIONS

# During an outage the API caller gets a 503 within about this long, not after a hang:
# the wait for a pooled connection, and the wait for a new one to be established.
CHECKOUT_WAIT_S = 1.5
CONNECT_TIMEOUT_S = 2
# Sent data unacknowledged this long drops the connection (a vanished host fails a query
# in seconds). A long-running query sends nothing, so this never cuts one short.
TCP_USER_TIMEOUT_MS = 3_000
# The pool retries a lost connection in the background with a doubling delay; giving up
# early makes the next checkout try afresh, so the API is back within seconds of the
# database rather than waiting out the pool's backoff.
RECONNECT_GIVE_UP_S = 2.0
# Per sort or hash of an analytics query (a few connections, each one query at a time).
ANALYTICS_WORK_MEM = "32MB"


class PostgresConnections:
    dialect = POSTGRES

    def __init__(self, database_url: str, timeout_s: float, size: int,
                 checkout_wait_s: float = CHECKOUT_WAIT_S):
        self.timeout_s = timeout_s
        timeout_ms = max(1, int(timeout_s * 1000))

        def configure(conn: psycopg.Connection) -> None:
            # Reads only: autocommit, so each statement is its own snapshot and no
            # connection sits idle in a transaction between queries.
            conn.autocommit = True
            # No JIT: the read side's queries sum a few thousand rollup rows or look rows
            # up by index, where compiling cost more than it saved (50 ms of a 90 ms
            # window edge on 1M records, chosen for an over-estimated row count).
            conn.execute("SET jit = off")
            # Room to sort or hash a window edge in memory. A raw edge (the minutes past
            # the last whole hour) holds ~26,000 records at 10M a month; grouped by the
            # latency bin its CASE key cannot be estimated, so under the default 4 MB the
            # planner sorted it on disk (3 MB, a third of the 290 ms edge, three edges per
            # overview). Only raised: a server configured higher keeps its own.
            conn.execute("SELECT set_config('work_mem', %s, false) WHERE"
                         " pg_size_bytes(current_setting('work_mem')) < pg_size_bytes(%s)",
                         (ANALYTICS_WORK_MEM, ANALYTICS_WORK_MEM))
            # Last: the timeout covers every statement after it, and a setup statement
            # cancelled by a small limit (1 ms in a test, on a loaded machine) failed the
            # new connection, so the caller got a 503 "unreachable" instead of a 504.
            conn.execute(f"SET statement_timeout = {timeout_ms}")

        self._pool = ConnectionPool(
            database_url, min_size=1, max_size=size, timeout=checkout_wait_s,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                    "tcp_user_timeout": TCP_USER_TIMEOUT_MS, **SESSION_OPTIONS},
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            configure=configure, check=ConnectionPool.check_connection,
            name="heliograph-analytics", open=True)

    @contextmanager
    def cursor(self, stream: bool = False) -> Iterator[psycopg.Cursor]:
        """stream: a server-side cursor, so rows are fetched from the server as fetchmany
        asks for them; a client-side one holds every row in the worker first (a 30-day
        scan of 3M rows peaked at 792 MB, issue #16)."""
        try:
            with self._pool.connection() as conn:
                if not stream:
                    with conn.cursor() as cur:
                        yield cur
                    return
                # A named cursor lives in a transaction (the connection is autocommit).
                with conn.transaction(), conn.cursor(name="heliograph-stream") as named:
                    yield named
        except psycopg.errors.QueryCanceled:
            raise QueryTimeout(self.timeout_s) from None
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable("the database is unreachable; the query API is back"
                                      " within seconds of it, retry shortly") from exc

    def close(self) -> None:
        self._pool.close()
