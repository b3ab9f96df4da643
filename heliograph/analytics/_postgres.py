"""The analytics side's own PostgreSQL pool, apart from the store's (key lookups and the
writer), with a server-side statement_timeout so no query can run away with the
database. Imported only for a postgres URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from heliograph.analytics.errors import DatabaseUnavailable, QueryTimeout
from heliograph.store.postgres import POSTGRES


class PostgresConnections:
    dialect = POSTGRES

    def __init__(self, database_url: str, timeout_s: float, size: int,
                 connect_timeout_s: float = 10.0):
        self.timeout_s = timeout_s
        timeout_ms = max(1, int(timeout_s * 1000))

        def configure(conn: psycopg.Connection) -> None:
            # Reads only: autocommit, so each statement is its own snapshot and no
            # connection sits idle in a transaction between queries.
            conn.autocommit = True
            conn.execute(f"SET statement_timeout = {timeout_ms}")

        self._pool = ConnectionPool(
            database_url, min_size=1, max_size=size, timeout=connect_timeout_s,
            configure=configure, check=ConnectionPool.check_connection,
            name="heliograph-analytics", open=True)

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except psycopg.errors.QueryCanceled:
            raise QueryTimeout(self.timeout_s) from None
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(f"the database is unreachable: {exc}") from None

    def close(self) -> None:
        self._pool.close()
