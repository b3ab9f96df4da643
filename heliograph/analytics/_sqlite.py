"""The analytics side's own SQLite connections: one per analytics thread, query-only,
each query aborted once it runs past the deadline (sqlite3 has no statement timeout, so
a progress handler checks the clock every few thousand VM steps)."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from heliograph.analytics.errors import QueryTimeout
from heliograph.store.sqlite import SQLITE, sqlite_path

_PROGRESS_STEPS = 10_000  # VM instructions between clock checks (~0.1 ms each)


class SQLiteConnections:
    dialect = SQLITE

    def __init__(self, database_url: str, timeout_s: float, busy_timeout_s: float = 30.0):
        self.path = sqlite_path(database_url)
        self.timeout_s = timeout_s
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> tuple[sqlite3.Connection, list[float]]:
        found = getattr(self._local, "conn", None)
        if found is not None:
            return found
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        conn.execute("PRAGMA query_only = ON")  # the read side never writes
        deadline = [math.inf]
        # A nonzero return aborts the running statement with "interrupted".
        conn.set_progress_handler(lambda: time.monotonic() > deadline[0], _PROGRESS_STEPS)
        self._local.conn = (conn, deadline)
        with self._lock:
            self._opened.append(conn)
        return conn, deadline

    @contextmanager
    def cursor(self, stream: bool = False) -> Iterator[sqlite3.Cursor]:
        """A cursor whose statements (each its own snapshot) must finish within
        timeout_s of this call, or raise QueryTimeout. sqlite3 always steps rows as they
        are fetched, so `stream` changes nothing here."""
        conn, deadline = self._connection()
        deadline[0] = time.monotonic() + self.timeout_s
        cur = conn.cursor()
        try:
            yield cur
        except sqlite3.OperationalError as exc:
            if "interrupt" in str(exc):
                raise QueryTimeout(self.timeout_s) from None
            raise
        finally:
            deadline[0] = math.inf
            cur.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened = []
        self._local = threading.local()
