"""Checkpoints of the journal writer's SQLite write-ahead log, off the writer's thread.

SQLite copies committed pages from the write-ahead log into the database file at a
checkpoint. Left to the writer's own connection (wal_autocheckpoint), one commit in every
64 MB of log also copies those pages and syncs the file, in the writer's thread. The
writer's connections turn that off, and this thread runs `PRAGMA wal_checkpoint(PASSIVE)`
on a connection of its own once the log holds `every_bytes`: one C call that lets go of
the GIL. A checkpoint never takes the write lock and never weakens a commit
(synchronous = FULL: a commit is durable in the log before any checkpoint).

Every connection to the file sets journal_size_limit = 0 (store/sqlite.py), so the log
file is cut back when the log starts over, whoever starts it (the workers' shared state
writes to the same file): its size is then what the log holds, one stat() a commit.

The log starts over from its beginning only when a write transaction begins with every
committed frame copied. A writer that commits batch after batch would otherwise keep
beginning while a checkpoint runs, and the log would grow without bound: once it holds
twice `every_bytes`, the writer waits (before its next transaction) for a checkpoint of
everything it committed (wait_if_behind).

The thread starts with the store (start()), so it runs at the niceness of the thread that
opened the store, not at that of the first to commit past every_bytes: the journal writer
also commits from a thread at nice 19 (background/journal_writer.py), and a checkpoint
starved there would hold up its passes at full priority in wait_if_behind.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("heliograph.store")


class Checkpointer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], log_path: str,
                 every_bytes: int):
        self._connect = connect
        self._log_path = log_path
        self.every_bytes = every_bytes
        self._cond = threading.Condition()
        self._committed = 0     # commits signalled
        self._wanted = 0        # commits the next checkpoint must include
        self._covered = 0       # commits the last finished checkpoint included
        self._thread: threading.Thread | None = None
        self._closed = False

    def _log_bytes(self) -> int:
        try:
            return os.stat(self._log_path).st_size
        except OSError:
            return 0

    def start(self) -> None:
        """Start the thread now, from the calling thread (it connects on the first
        request)."""
        with self._cond:
            self._start()

    def committed(self) -> None:
        """The writer committed: a checkpoint once the log holds every_bytes."""
        with self._cond:
            self._committed += 1
            if self._log_bytes() >= self.every_bytes:
                self._request()

    def wait_if_behind(self) -> None:
        """Before a write transaction: while the log holds twice every_bytes, wait for a
        checkpoint of every commit so far, so that this transaction starts it over."""
        if self._log_bytes() < 2 * self.every_bytes:
            return
        with self._cond:
            target = self._committed
            self._request()
            while self._covered < target and self._thread is not None and not self._closed:
                self._cond.wait()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _request(self) -> None:
        """(Under the lock.) A checkpoint of every commit so far, by the thread."""
        self._wanted = self._committed
        self._start()   # again, if a failure ended it
        self._cond.notify_all()

    def _start(self) -> None:
        """(Under the lock.)"""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="heliograph-checkpoint")
            self._thread.start()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                with self._cond:
                    while self._covered >= self._wanted and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    target = self._wanted
                if conn is None:
                    try:
                        conn = self._connect()
                    except sqlite3.Error as exc:   # the next request starts another thread
                        log.warning("cannot open a connection to checkpoint the SQLite "
                                    "log: %s", exc)
                        return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:   # the next request tries again
                    log.warning("checkpointing the SQLite log failed: %s", exc)
                with self._cond:
                    self._covered = target
                    self._cond.notify_all()
        finally:
            if conn is not None:
                conn.close()
            self._ended()

    def _ended(self) -> None:
        """No thread checkpoints now: nobody may wait for one."""
        with self._cond:
            self._thread = None
            self._cond.notify_all()
