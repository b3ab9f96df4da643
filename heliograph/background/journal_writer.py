"""The journal writer job: moves every worker's closed journal segments into the store.

Machine scope: one writer per journal folder drains the segments of all the workers on
this machine, including those left by killed processes (store/writer.py does the work:
batching, salvage of refused rows, idempotent inserts).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext
from heliograph.background.memory import trim_heap
from heliograph.background.priority import BACKGROUND_NICENESS
from heliograph.niceness import thread_niceness

# The writer's store imports these at its first insert (workers never insert, so they
# never load them). The host imports them at startup instead: loaded after its first
# batch, their objects land among that batch's and the host's idle RSS is ~0.5 MB higher.
from heliograph.store import _rollup_writer, _webhook_feed  # noqa: F401
from heliograph.store.journal import closed_segments
from heliograph.store.writer import SegmentWriter

if TYPE_CHECKING:
    from heliograph.store.base import Store

log = logging.getLogger("heliograph.background")

# The delay before a closed segment is in the database (the workers close theirs every
# 0.2 s).
IDLE_INTERVAL_S = 0.1


def oldest_segments(segments: list[Path], max_bytes: int) -> list[Path]:
    """The first of `segments` (oldest first) up to max_bytes, at least one."""
    taken: list[Path] = []
    total = 0
    for path in segments:
        try:
            total += path.stat().st_size
        except OSError:   # taken meanwhile
            continue
        if taken and total > max_bytes:
            break
        taken.append(path)
    return taken


class JournalWriterJob:
    name = "journal-writer"
    scope = "machine"
    runs_at_exit = True
    # Seconds without a segment to insert after which the writer gives its memory back:
    # SQLite's page cache (up to 4 MB once the database is large; 64 MB until session 9,
    # bench/writer_memory.py) and the heap a backlog's records left. Long enough that a
    # gateway with traffic never pays for reading the index pages back.
    release_after_idle_s = 30.0

    # A pass on the host's nice-19 lane (priority.py) takes at most this much of the
    # journal: starved while the workers saturate the machine, a longer one would keep
    # the writer there after the backlog has grown past CATCH_UP_BYTES. (A transaction of
    # 2 MB costs ~10% more CPU a record than one of 4 MB, where the lane has CPU to spare.)
    yielding_pass_bytes = 2 * 1024 * 1024

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.store: Store | None = None
        # One by the niceness of the thread it runs on (priority.py): a writer's insert
        # threads (PostgreSQL's pipeline) start from the first pass that needs them and
        # keep that thread's niceness.
        self._writers: dict[int, SegmentWriter] = {}
        self.interval_s = IDLE_INTERVAL_S
        self.clock = time.monotonic
        self._busy_at = self.clock()
        self._released = True   # nothing held yet

    def run_once(self) -> bool:
        if self.store is None:
            # Opened here, not at startup: a database that is down when the host starts
            # is retried with backoff like any other outage.
            from heliograph.store import open_store
            try:
                self.store = open_store(self.ctx.database_url, writer=True)
            except Exception as exc:
                log.warning("cannot open the database for the journal writer (%s); "
                            "will retry", exc)
                return False
        now = self.clock()
        segments = closed_segments(self.ctx.journal_dir)
        self.interval_s = IDLE_INTERVAL_S
        if segments:
            self._busy_at = now
            self._released = False
            niceness = thread_niceness()
            if niceness >= BACKGROUND_NICENESS:
                taken = oldest_segments(segments, self.yielding_pass_bytes)
                if len(taken) < len(segments):
                    segments, self.interval_s = taken, 0.0   # the rest right after
            writer = self._writers.get(niceness)
            if writer is None:
                writer = self._writers[niceness] = SegmentWriter(self.ctx.journal_dir,
                                                                 self.store)
            return writer.drain(segments)
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
        for writer in self._writers.values():   # insert threads first: they use the store
            writer.close()
        if self.store is not None:
            self.store.close()
