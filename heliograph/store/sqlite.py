"""SQLiteStore: the Store on one SQLite file, with the standard library's sqlite3.

Several gateway worker processes write the same file, each from its own writer thread,
while query-API threads read it. Hence WAL (readers never block the writer, nor it them),
a busy timeout (writers from other processes queue instead of failing), one connection
per thread (a sqlite3 connection must not be used by two threads at once), and
BEGIN IMMEDIATE for every write (take the write lock up front: a deferred transaction
that later upgrades to a write fails at once with SQLITE_BUSY rather than waiting).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from heliograph.store._schema import record_to_row
from heliograph.store._sql import Dialect, SQLStore
from heliograph.store.search import SQLITE_FTS_DELETE, SQLITE_FTS_FILL

if TYPE_CHECKING:
    from heliograph.store._sqlite_checkpoint import Checkpointer

# Page cache per connection, KiB. Only the journal writer's connection gets the large
# one (open_store(writer=True)): it touches the tail of every index per batch. Every other
# connection (key lookups, state, the host's other jobs) reads a few pages per call, and
# a cache fills as pages are read and stays filled for the connection's life: at 64 MB
# each, the background host's search indexer, retention, ANALYZE and alerts connections
# grew it from ~37 to ~64 MB RSS as the database grew (bench/footprint.py). 2 MB is
# SQLite's own default. The writer's 16 MB holds about one transaction's pages (a 4 MB
# batch of the journal dirties ~18 MB: sqlite3_memory_highwater); 64 MB gave no more
# records per CPU-second, and filled as the database grew: a host running the writer
# alone peaked at 118 MB RSS over 100,000 records, 71 MB with 16 (bench/README.md,
# session 9, bench/writer_memory.py --writer-only). 8 MB (session 10): the same peak for a
# host running every job, whose search indexer's commits empty the writer's cache anyway.
# (Transactions are 2 MB of journal since session 11, ~9 MB of dirty pages: the cache
# no longer bounds them; where nothing else commits it still fills with read pages.)
# 4 MB since session 14: the background host's peak is when its writer catches up with a
# backlog, and the cache then holds the transaction's dirty pages (SQLite writes the
# rest to the log before the commit): draining a 48 MB backlog the host peaked 6 MB
# lower than with 16 MB, 44 MB in all with one malloc arena (background/memory.py);
# bench/store_writer.py --journal --live: 16 / 4 / 2 MB within 2-4% of one another,
# alternated, the order changing from round to round (bench/README.md, session 14).
CACHE_KIB = 2048
WRITER_CACHE_KIB = 4096
CHECKPOINT_PAGES = 16384
# Pages handed back per retention batch.
VACUUM_PAGES = 4096

SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    like_ci="LIKE",   # case-insensitive for ASCII letters only (no ICU in stdlib sqlite3)
    lock_rows="",     # BEGIN IMMEDIATE already holds the database write lock
    types={"float": "REAL", "bigint": "INTEGER", "bool": "INTEGER",
           "sortable_text": "TEXT"},  # BINARY collation: byte order already
)


def sqlite_path(database_url: str) -> str:
    """sqlite:///relative/path.db → relative/path.db; sqlite:////abs/path.db → /abs/path.db."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or len(database_url) == len(prefix):
        raise ValueError(f"invalid SQLite url {database_url!r}: use sqlite:///path.db")
    path = database_url[len(prefix):]
    if path == ":memory:":
        # Each thread has its own connection, so each would see its own empty database.
        raise ValueError("sqlite:///:memory: is not supported: use a file path")
    return path


def _as_int(value) -> int:
    return 1 if value else 0


class SQLiteStore(SQLStore):
    dialect = SQLITE
    # NULLs as NaN and booleans as 0/1: sqlite3 binds a None or a bool through its
    # adapter lookup (~280 ns), a float or an int directly (~40 ns), ~8 per record; SQLite
    # stores a bound NaN as NULL, and had stored the booleans as 0/1 anyway.
    _request_row = staticmethod(partial(record_to_row, null=math.nan, truth=_as_int))
    # One write lock a transaction (BEGIN IMMEDIATE): no two transactions hold rollup rows
    # at once, so nothing to order them for. Sorting the keys (tuples of equal strings,
    # compared item by item) was ~12,500 of the journal writer's ~460,000 instructions
    # a record (bench/README.md, session 15, hW); the sums are the same in any order.
    rollups_in_key_order = False
    # A journal writer's transaction takes at most this much of the journal (besides
    # writer_batch records): parsed, 4 MB of records (~1,400 of bench/store_writer.py's
    # 2.9 KB) is ~10 MB of Python objects, where a backlog of 2,000 records was ~14 MB,
    # which the background host kept as RSS (bench/footprint.py); it also bounds how long
    # the writer holds SQLite's one write lock, which the workers' shared state waits for.
    # 1 MB transactions cost ~15% of the records per CPU-second, 4 MB ~2%.
    # 2 MB since session 11 (issue #15, the tree's peak RSS): the background host's peak is
    # set by its largest transaction, ~7 MB of RSS per MB of journal it takes (the parsed
    # records, ~2.2x, and the pages it dirties, ~4x, which stay in the writer's page cache
    # until the commit): a 10 MB backlog drained in 4 MB transactions peaked at +26 MB
    # over the idle host, in 2 MB ones at +15 (bench/README.md, session 11), for ~8% fewer
    # records per writer CPU-second (bench/store_writer.py --journal --live).
    writer_batch_bytes = 2 * 1024 * 1024
    integrity_errors = (sqlite3.IntegrityError,)
    data_errors = SQLStore.data_errors + (sqlite3.DataError, sqlite3.InterfaceError)
    outage_errors = (sqlite3.OperationalError,)  # locked, unreadable, disk I/O

    def __init__(self, database_url: str, busy_timeout_s: float = 30.0,
                 cache_kib: int = CACHE_KIB, writer: bool = False, shared: bool = False
                 ) -> None:
        self.path = sqlite_path(database_url)
        self.cache_kib = cache_kib
        # writer: the journal writer's store. Its commits are checkpointed by a thread and
        # connection of their own (_sqlite_checkpoint.py), not by the committing thread;
        # and its threads use one connection, one at a time (its passes run on two
        # threads of different niceness, background/priority.py, and share one page
        # cache). shared: its threads use one connection, one at a time (the writer's, a
        # background job's: open_store). Every other store has a connection per thread.
        self._shared = writer or shared
        self._checkpointer: Checkpointer | None = None
        if writer:  # only the writer's store checkpoints: imported for it alone (issue 15)
            from heliograph.store._sqlite_checkpoint import Checkpointer
            self._checkpointer = Checkpointer(self._open_checkpointer, self.path + "-wal",
                                              CHECKPOINT_PAGES * 4096)
            self._checkpointer.start()
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = self._new_local()
        # Every connection opened, by thread, so close() can close them all and a new
        # connection can close those of threads that have exited.
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()

    def _new_local(self) -> Any:
        return SimpleNamespace() if self._shared else threading.local()

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: the module issues no implicit BEGINs; _transaction does.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        # Only takes effect on a new, empty file: retention can then hand freed pages
        # back to the file system (PRAGMA incremental_vacuum). An older file keeps
        # reusing its freed pages instead. Set only there: setting it takes the write
        # lock, so on a file in use a new connection would wait out the journal
        # writer's transaction (up to the busy timeout) before serving anything.
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        # The journal writer touches the tail of every index per batch; with a 2 MB cache
        # those pages were read back from the OS for each batch (64 MB: twice the
        # records/s in bench/store_writer.py; 16 MB as many). Pages are cached only as read.
        conn.execute(f"PRAGMA cache_size = -{self.cache_kib}")
        # Checkpoint the write-ahead log every 64 MB instead of 4: an index page the
        # writer changes in several batches is copied into the file once (~15% more
        # records/s in bench/store_writer.py).
        # (Never, on the journal writer's store: its checkpoints run apart.)
        every = CHECKPOINT_PAGES if self._checkpointer is None else 0
        conn.execute(f"PRAGMA wal_autocheckpoint = {every}")
        # The log file cut back whenever the log starts over, by whichever process's
        # connection starts it: its size then tells what the log holds, which the
        # journal writer's checkpoint thread goes by (_sqlite_checkpoint.py).
        conn.execute("PRAGMA journal_size_limit = 0")
        self._enable_wal(conn)
        # FULL (not NORMAL): a committed batch must survive power loss, because the
        # writer drops it from the journal once insert_records returns.
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _open_checkpointer(self) -> sqlite3.Connection:
        """The checkpoint thread's connection: none of _open's settings that take the
        write lock (auto_vacuum does), which a writer committing back to back would keep
        it waiting for. The file is in WAL mode already (the writer's connection made it)."""
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")   # the file synced at each checkpoint
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a fresh file to WAL needs an exclusive lock; when several processes
        # open it at once one can get "database is locked" despite the busy timeout.
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._connections_lock:
                alive = []
                for thread, other in self._connections:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        other.close()
                alive.append((threading.current_thread(), conn))
                self._connections = alive
        return conn

    @contextmanager
    def _transaction(self, write: bool, wait_s: float | None = None
                     ) -> Iterator[sqlite3.Cursor]:
        # wait_s does not apply: a local file has no connection to wait for (a locked
        # database waits out the busy timeout).
        conn = self._connection()
        cur = conn.cursor()
        try:
            # Reads are single statements: each is its own consistent snapshot.
            if write:
                if self._checkpointer is not None:
                    self._checkpointer.wait_if_behind()
                cur.execute("BEGIN IMMEDIATE")
            yield cur
            if write:
                cur.execute("COMMIT")
                if self._checkpointer is not None:
                    self._checkpointer.committed()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    # -- the bodies' full-text index (store/search.py) -----------------------------
    def index_search(self, limit: int = 5000) -> int:
        with self._transaction(write=True) as cur:
            done = cur.execute("SELECT indexed_seq FROM search_progress").fetchone()[0]
            last = cur.execute("SELECT MAX(seq), COUNT(*) FROM (SELECT seq FROM"
                               " request_bodies WHERE seq > ? ORDER BY seq LIMIT ?)",
                               (done, limit)).fetchone()
            if not last[1]:
                return 0
            cur.execute(SQLITE_FTS_FILL + " WHERE seq > ? AND seq <= ?", (done, last[0]))
            cur.execute("UPDATE search_progress SET indexed_seq = ?", (last[0],))
            return last[1]

    def purge(self, records_before: str | None, bodies_before: str | None,
              batch: int = 2000) -> int:
        deleted = super().purge(records_before, bodies_before, batch)
        if deleted:
            # Hand freed pages back to the file system (a file created with
            # auto_vacuum = INCREMENTAL; elsewhere a no-op, and SQLite reuses them).
            with self._transaction(write=True) as cur:
                cur.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES})")
        return deleted

    def update_planner_stats(self, every_table: bool = False) -> None:
        """ANALYZE on a sample (analysis_limit), so the planner knows a rare user from a
        common model; a few hundred ms even on millions of rows."""
        with self._transaction(write=True) as cur:
            cur.execute("PRAGMA analysis_limit = 1000")
            cur.execute("ANALYZE")

    def _delete_bodies(self, cur, organization: str, request_ids: list[str]) -> None:
        marks = ", ".join("?" * len(request_ids))
        where = f" WHERE organization = ? AND request_id IN ({marks})"
        # Only what was indexed is taken out of the index (the contentless index must be
        # told exactly what it holds).
        cur.execute(SQLITE_FTS_DELETE + where
                    + " AND seq <= (SELECT indexed_seq FROM search_progress)",
                    (organization, *request_ids))
        cur.execute("DELETE FROM request_bodies" + where, (organization, *request_ids))

    def release_memory(self) -> None:
        """Empty the calling thread's page cache, or the one connection's (PRAGMA
        shrink_memory): the journal writer's 16 MB cache fills as the database grows and
        stays full for the connection's life; once the writer is idle
        (background/journal_writer.py) the pages are worth less than the memory. The next
        batch reads back the few it needs."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.in_transaction:
            conn.execute("PRAGMA shrink_memory")

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._connections_lock:
            for _thread, conn in self._connections:
                conn.close()
            self._connections = []
        self._local = self._new_local()
