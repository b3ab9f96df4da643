"""Checkpoints of the journal writer's SQLite write-ahead log, off the writer's thread.

SQLite copies committed pages from the write-ahead log into the database file at a
checkpoint. Left to the writer's own connection (wal_autocheckpoint), one commit in every
64 MB of log also copies those pages and syncs the file, in the writer's thread. The
writer's connections turn that off, and this thread runs `PRAGMA wal_checkpoint(PASSIVE)`
on a connection of its own once the log holds `every_bytes`: one C call that lets go of
the GIL. A checkpoint never takes the write lock and never weakens a commit
(synchronous = FULL: a commit is durable in the log before any checkpoint).

What the log holds is read from the wal-index header at the start of the -shm file (its
frame count, mxFrame: see log_bytes), one small read a commit: not from the log file's
size, because the file is no longer cut back when the log starts over (store/sqlite.py
LOG_FILE_LIMIT_BYTES: new frames are written over old ones, which costs less than
growing the file again).

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
import sqlite3
import struct
import threading
from collections.abc import Callable

log = logging.getLogger("heliograph.store")

# The wal-index header (https://www.sqlite.org/walformat.html, "The WAL-Index Header"),
# in the host's byte order: szPage (the page size, 1 for 65,536) at byte 14, then
# mxFrame (the frames in the log; 0 once it starts over) at 16.
_WAL_INDEX_HEADER = struct.Struct("=14xHI")
# A frame in the log file: a 24-byte header and the page.
_FRAME_HEADER_BYTES = 24


def log_bytes(index_path: str) -> int:
    """The bytes of log that the write-ahead log holds, from its wal-index (the -shm file
    at `index_path`): 0 if there is none yet. Read without SQLite's locks: a number to
    decide when to checkpoint by, which a torn read only makes one commit early or late."""
    try:
        with open(index_path, "rb") as fh:
            header = fh.read(_WAL_INDEX_HEADER.size)
    except OSError:
        return 0
    if len(header) < _WAL_INDEX_HEADER.size:
        return 0
    page, frames = _WAL_INDEX_HEADER.unpack(header)
    return frames * ((65536 if page == 1 else page) + _FRAME_HEADER_BYTES)


class Checkpointer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], index_path: str,
                 every_bytes: int):
        self._connect = connect
        self._index_path = index_path   # the log's wal-index, the -shm file
        self.every_bytes = every_bytes
        self._cond = threading.Condition()
        self._committed = 0     # commits signalled
        self._wanted = 0        # commits the next checkpoint must include
        self._covered = 0       # commits the last finished checkpoint included
        self._thread: threading.Thread | None = None
        self._closed = False

    def _log_bytes(self) -> int:
        return log_bytes(self._index_path)

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
