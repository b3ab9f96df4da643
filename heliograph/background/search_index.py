"""The search-index job: adds newly stored bodies to the text-search index, behind the
writer (store/search.py says why), so `q` finds a record a moment after it is listed.

Deployment scope: one indexer however many machines share the database (on PostgreSQL
two would only skip each other's rows, but would double the work of finding them).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext

if TYPE_CHECKING:
    from heliograph.store.base import Store

log = logging.getLogger("heliograph.background")

BATCH = 2000
# A run stops after this long (the host renews deployment locks between runs) and the
# next one follows at once when work remains.
RUN_BUDGET_S = 2.0
IDLE_INTERVAL_S = 0.2


class SearchIndexJob:
    name = "search-index"
    scope = "deployment"
    runs_at_exit = False

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.store: Store | None = None
        self.interval_s = IDLE_INTERVAL_S

    def run_once(self) -> bool:
        if self.store is None:
            from heliograph.store import open_store
            try:
                self.store = open_store(self.ctx.database_url, one_thread_at_a_time=True)
            except Exception as exc:
                log.warning("cannot open the database for the search index (%s); "
                            "will retry", exc)
                return False
        deadline = time.monotonic() + RUN_BUDGET_S
        while time.monotonic() < deadline:
            if self.store.index_search(BATCH) < BATCH:
                self.interval_s = IDLE_INTERVAL_S
                return True
        self.interval_s = 0.0  # more waits: go on right after the lock check
        return True

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
