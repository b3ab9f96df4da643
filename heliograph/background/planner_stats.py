"""The planner-statistics job: SQLite's query planner chooses indexes well only with
statistics (one ANALYZE took a rare user's listing on 1M records from ~1 s to ~2 ms), and
SQLite never gathers them by itself. PostgreSQL's autovacuum does where it is on; where it
is off (or a bulk load outruns it) this analyzes the tables that changed. It also creates
PostgreSQL's partitions for the coming months (store/_partitions.py), before the writer
needs them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from heliograph.background.jobs import JobContext

if TYPE_CHECKING:
    from heliograph.store.base import Store

log = logging.getLogger("heliograph.background")


INTERVAL_S = 600.0


class PlannerStatsJob:
    name = "planner-stats"
    scope = "deployment"
    runs_at_exit = False

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.store: Store | None = None
        # Soon after start (once the deployment lock is held), then every 10 minutes:
        # the data's shape changes slowly.
        self.interval_s = 1.0

    def run_once(self) -> bool:
        from heliograph.store import open_store
        try:
            self.store = open_store(self.ctx.database_url, one_thread_at_a_time=True)
        except Exception as exc:
            log.warning("cannot open the database for planner statistics (%s)", exc)
            return False
        try:
            self.store.update_planner_stats()
            # PostgreSQL: the coming months' partitions, made here ahead of the writer.
            self.store.prepare_partitions()
        finally:
            # Nothing held between passes, ten minutes apart: on SQLite the connection
            # kept ANALYZE's prepared statement (~1.3 MB: one program over every table and
            # index) and the pages it read (~0.5 MB), in the background host for its
            # whole life, its peak under load included (bench/README.md, session 16).
            self.close()
        self.interval_s = INTERVAL_S
        return True

    def close(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.close()
