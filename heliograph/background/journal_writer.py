"""The journal writer job: moves every worker's closed journal segments into the store.

Machine scope: one writer per journal folder drains the segments of all the workers on
this machine, including those left by killed processes (store/writer.py does the work:
batching, salvage of refused rows, idempotent inserts).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext
from heliograph.background.memory import trim_heap
from heliograph.store.journal import closed_segments
from heliograph.store.writer import SegmentWriter

if TYPE_CHECKING:
    from heliograph.store.base import Store

log = logging.getLogger("heliograph.background")


class JournalWriterJob:
    name = "journal-writer"
    scope = "machine"
    # The delay before a closed segment is in the database (the workers close theirs
    # every 0.2 s).
    interval_s = 0.1
    runs_at_exit = True
    # Seconds without a segment to insert after which the writer gives its memory back:
    # SQLite's page cache (up to 16 MB once the database is large; 64 MB until session 9,
    # bench/writer_memory.py) and the heap a backlog's records left. Long enough that a
    # gateway with traffic never pays for reading the index pages back.
    release_after_idle_s = 30.0

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.store: Store | None = None
        self.writer: SegmentWriter | None = None
        self.clock = time.monotonic
        self._busy_at = self.clock()
        self._released = True   # nothing held yet

    def run_once(self) -> bool:
        if self.writer is None:
            # Opened here, not at startup: a database that is down when the host starts
            # is retried with backoff like any other outage.
            from heliograph.store import open_store
            try:
                self.store = open_store(self.ctx.database_url, writer=True)
            except Exception as exc:
                log.warning("cannot open the database for the journal writer (%s); "
                            "will retry", exc)
                return False
            self.writer = SegmentWriter(self.ctx.journal_dir, self.store)
        now = self.clock()
        segments = closed_segments(self.ctx.journal_dir)
        if segments:
            self._busy_at = now
            self._released = False
            return self.writer.drain(segments)
        if not self._released and now - self._busy_at >= self.release_after_idle_s:
            self.release_memory()
        return True

    def release_memory(self) -> None:
        """Empty the writer connection's page cache (this thread's: the SQLite store
        inserts on the job's own thread) and hand the free heap back to the system."""
        self._released = True
        release = getattr(self.store, "release_memory", None)
        if release is not None:
            release()
        trim_heap()

    def close(self) -> None:
        if self.writer is not None:   # its insert threads first: they use the store
            self.writer.close()
        if self.store is not None:
            self.store.close()
