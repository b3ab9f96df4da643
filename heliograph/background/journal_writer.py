"""The journal writer job: moves every worker's closed journal segments into the store.

Machine scope: one writer per journal folder drains the segments of all the workers on
this machine, including those left by killed processes (store/writer.py does the work:
batching, salvage of refused rows, idempotent inserts).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from heliograph.background.jobs import BACKGROUND_NICENESS, JobContext
from heliograph.background.memory import trim_heap
from heliograph.niceness import set_thread_niceness
from heliograph.store.journal import closed_segments
from heliograph.store.writer import SegmentWriter, backlog_bytes

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

    # The job's thread keeps the host's priority (the gateway's). Passes over a small
    # backlog run on a thread at BACKGROUND_NICENESS instead: a burst waits in the journal
    # and is served at full speed. A pass over catch_up_bytes or more runs on the job's
    # own thread, so a gateway saturating the machine does not leave the log ever further
    # behind: at nice 19 alone the writer got ~1/70 of a core's share there and the
    # journal grew 5.3 MB/s for as long as the load lasted (bench/README.md). One thread
    # cannot do both: lowering a niceness once raised needs privilege (niceness.py).
    niceness = None
    catch_up_bytes = 32 * 1024 * 1024

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.store: Store | None = None
        self.writer: SegmentWriter | None = None        # on the job's thread
        self._yielding: tuple[ThreadPoolExecutor, SegmentWriter] | None = None
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
            if backlog_bytes(segments) >= self.catch_up_bytes:
                return self.writer.drain(segments)
            lane, writer = self._yielding_lane()
            return lane.submit(writer.drain, segments).result()
        if not self._released and now - self._busy_at >= self.release_after_idle_s:
            self.release_memory()
        return True

    def _yielding_lane(self) -> tuple[ThreadPoolExecutor, SegmentWriter]:
        """The thread for passes that may wait, and a writer of its own (on PostgreSQL
        its insert threads start from it, at its niceness)."""
        if self._yielding is None:
            assert self.store is not None
            lane = ThreadPoolExecutor(1, thread_name_prefix="heliograph-writer-yielding",
                                      initializer=set_thread_niceness,
                                      initargs=(BACKGROUND_NICENESS,))
            self._yielding = lane, SegmentWriter(self.ctx.journal_dir, self.store)
        return self._yielding

    def release_memory(self) -> None:
        """Empty the writer connection's page cache (this thread's: the SQLite store
        inserts on the job's own thread) and hand the free heap back to the system."""
        self._released = True
        release = getattr(self.store, "release_memory", None)
        if release is not None:
            release()
        trim_heap()

    def close(self) -> None:
        if self._yielding is not None:
            lane, writer = self._yielding
            lane.shutdown(wait=True)
            writer.close()
        if self.writer is not None:   # its insert threads first: they use the store
            self.writer.close()
        if self.store is not None:
            self.store.close()
