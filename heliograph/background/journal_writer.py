"""The journal writer job: moves every worker's closed journal segments into the store.

Machine scope: one writer per journal folder drains the segments of all the workers on
this machine, including those left by killed processes (store/writer.py does the work:
batching, salvage of refused rows, idempotent inserts).

It runs under SCHED_IDLE (host.py run_when_idle): its inserts get a core only when
serving leaves one, so they never hold up a request. Under a load that keeps every core
busy it would get almost nothing, so once the oldest closed segment has waited longer
than CATCH_UP_AFTER_S the drains move to a catch-up thread of normal policy (the host's
nice 19, which kept ~0.1 core under bench/run.py's saturating load) until the backlog is
gone. An unprivileged thread cannot leave SCHED_IDLE, hence a second thread rather than
a switch; both use the store's one connection, one at a time.

On SQLite a drain holds the database's one write lock for its transaction, which the
workers' shared state (when it is not in Redis) waits for up to 0.5 s: a drain starved
mid-transaction delays those writes. Transactions are kept short for that
(SQLiteStore.writer_batch_bytes), and a backlog moves the drains to the normal thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext
from heliograph.store.journal import closed_segments
from heliograph.store.writer import SegmentWriter

if TYPE_CHECKING:
    from pathlib import Path

    from heliograph.store.base import Store

log = logging.getLogger("heliograph.background")

# A closed segment older than this means the idle-priority writer is not getting the CPU:
# drain on the catch-up thread until none is. Well under the backlog warning (writer.py).
CATCH_UP_AFTER_S = 2.0


def oldest_age_s(segments: list[Path], now: float) -> float:
    """Seconds since the least recently written of the closed segments (0: none)."""
    oldest = math.inf
    for path in segments:
        try:
            oldest = min(oldest, path.stat().st_mtime)
        except OSError:  # claimed and deleted meanwhile
            pass
    return max(0.0, now - oldest) if oldest < math.inf else 0.0


class JournalWriterJob:
    name = "journal-writer"
    scope = "machine"
    # The delay before a closed segment is in the database (the workers close theirs
    # every 0.2 s).
    interval_s = 0.1
    runs_at_exit = True
    idle_priority = True

    def __init__(self, ctx: JobContext, catch_up_after_s: float = CATCH_UP_AFTER_S):
        self.ctx = ctx
        self.catch_up_after_s = catch_up_after_s
        self.store: Store | None = None
        self.writer: SegmentWriter | None = None
        # How many drains the catch-up thread did (for /metrics-less diagnosis and tests).
        self.catch_ups = 0
        # Started here, on the host's main thread, so it has that thread's normal policy
        # (a thread inherits its creator's; the job's own thread becomes SCHED_IDLE).
        self._wanted = threading.Event()
        self._done = threading.Event()
        self._result = False
        self._closing = False
        self._catch_up_thread = threading.Thread(target=self._catch_up_loop, daemon=True,
                                                 name="journal-writer-catch-up")
        self._catch_up_thread.start()

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
        if oldest_age_s(closed_segments(self.ctx.journal_dir), time.time()) \
                > self.catch_up_after_s:
            return self._drain_on_catch_up_thread()
        return self.writer.drain()

    def _drain_on_catch_up_thread(self) -> bool:
        self._done.clear()
        self._wanted.set()
        self._done.wait()
        return self._result

    def _catch_up_loop(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            try:
                assert self.writer is not None
                self._result = self.writer.drain()
                self.catch_ups += 1
            except Exception:
                log.exception("journal writer catch-up failed")
                self._result = False
            finally:
                self._done.set()

    def close(self) -> None:
        self._closing = True
        self._wanted.set()
        self._catch_up_thread.join(5)
        if self.store is not None:
            self.store.close()
