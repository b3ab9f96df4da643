"""The journal writer job: moves every worker's closed journal segments into the store.

Machine scope: one writer per journal folder drains the segments of all the workers on
this machine, including those left by killed processes (store/writer.py does the work:
batching, salvage of refused rows, idempotent inserts).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext
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

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.store: Store | None = None
        self.writer: SegmentWriter | None = None

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
        return self.writer.drain()

    def close(self) -> None:
        if self.writer is not None:   # its insert threads first: they use the store
            self.writer.close()
        if self.store is not None:
            self.store.close()
