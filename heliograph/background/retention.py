"""The retention job: deletes records older than `[retention] days`, and the bodies of
records older than `[retention] bodies_days` (their metrics stay), in small batches each
in a transaction of its own, so the writer waits at most one batch. Rollup tables are
never touched. Deployment scope: one deleter however many replicas.

PostgreSQL: `requests` and `request_bodies` are partitioned by month
(store/_partitions.py), so a month wholly before the cut-off is detached and dropped
(what refers to its records goes in batches first); the month the cut-off falls in is
deleted in batches like SQLite's rows. SQLite hands freed pages back with an incremental
vacuum after each batch.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext
from heliograph.config import worker_settings
from heliograph.records import utc_iso

if TYPE_CHECKING:
    from heliograph.store.base import Store

log = logging.getLogger("heliograph.background")

DAY_S = 86400.0
BATCH = 2000
RUN_BUDGET_S = 2.0       # a run stops after this long; the next follows when work remains
IDLE_INTERVAL_S = 60.0   # how often old data is looked for once none is left
BUSY_INTERVAL_S = 0.05   # between runs while deleting: the writer gets the lock


def cutoff(days: int, now: float) -> str | None:
    """The created_at before which data older than `days` goes (None: keep forever)."""
    return utc_iso(now - days * DAY_S) if days > 0 else None


class RetentionJob:
    name = "retention"
    scope = "deployment"
    runs_at_exit = False

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        # The gateway's config file and environment (the host inherits them). A config
        # that no longer loads must not stop the host (it runs the journal writer too).
        try:
            settings = worker_settings()
            self.days = settings.retention_days
            self.bodies_days = settings.retention_bodies_days
        except Exception as exc:
            log.warning("retention is off: the config does not load (%s)", exc)
            self.days = self.bodies_days = 0
        self.store: Store | None = None
        # The host looks again after interval_s whether or not it held the lock: short
        # until the first run, so a deployment lock taken a moment after start does not
        # delay it a whole idle interval.
        self.interval_s = BUSY_INTERVAL_S * 20

    def run_once(self) -> bool:
        if not (self.days or self.bodies_days):
            return True
        if self.store is None:
            from heliograph.store import open_store
            try:
                self.store = open_store(self.ctx.database_url, one_thread_at_a_time=True)
            except Exception as exc:
                log.warning("cannot open the database for retention (%s); will retry", exc)
                return False
        now = time.time()
        records_before = cutoff(self.days, now)
        bodies_before = cutoff(self.bodies_days, now)
        deadline = time.monotonic() + RUN_BUDGET_S
        while time.monotonic() < deadline:
            if self.store.purge(records_before, bodies_before, BATCH) == 0:
                self.interval_s = IDLE_INTERVAL_S
                return True
        self.interval_s = BUSY_INTERVAL_S
        return True

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
