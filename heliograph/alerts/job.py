"""The background host's alerts job: evaluation and delivery, once per deployment.

One job (one deployment lock, one database connection pool) rather than two: every
pass (interval_s) it turns the webhook feed into deliveries and sends what is due
(delivery.py); every `[alerts] interval_s` it also evaluates every rule and budget
threshold (evaluator.py). Deliveries are sent with a timeout each, so a pass stays well
under the deployment lock's 10 s expiry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from heliograph.alerts.channels import SmtpSettings
from heliograph.alerts.delivery import FEED_BATCH, drain_feed, send_due
from heliograph.alerts.evaluator import evaluate_all
from heliograph.background.jobs import JobContext

log = logging.getLogger("heliograph.alerts")

# Feed backlog drained per pass at most (FEED_BATCH each): the rest waits a pass.
MAX_FEED_BATCHES = 10


class RecordReader:
    """The analytics reader webhook payloads are read with, opened by the first record a
    delivery needs: the analytics modules and their connection (~1.3 MB) stay out of a
    host with no request webhook."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.analytics: Any = None

    def get_request(self, organization: str, request_id: str) -> dict | None:
        if self.analytics is None:
            from heliograph.analytics import open_analytics

            self.analytics = open_analytics(self.database_url, threads=1)
        return self.analytics.get_request(organization, request_id)

    def close(self) -> None:
        if self.analytics is not None:
            self.analytics.close()
            self.analytics = None


class AlertsJob:
    name = "alerts"
    scope = "deployment"
    # How soon a queued notice or a retry is sent.
    interval_s = 0.5
    runs_at_exit = False

    def __init__(self, ctx: JobContext):
        from heliograph.config import Settings, worker_settings

        # The host inherits the gateway's environment, so it reads the same config. A
        # constructor that raised would take the whole host (the journal writer too)
        # down with it: a config gone bad since the gateway started means defaults.
        try:
            settings = worker_settings()
        except Exception as exc:
            log.warning("alerts: cannot read the config (%s); using defaults", exc)
            settings = Settings()
        self.ctx = ctx
        self.evaluate_every_s = settings.alerts_interval_s
        self.timezone = settings.alerts_timezone
        self.dashboard_url = settings.dashboard_base_url
        self.smtp = SmtpSettings.from_settings(settings)
        self.next_evaluation = 0.0
        self.store: Any = None
        self.records: RecordReader | None = None

    def _open(self) -> bool:
        from heliograph.store import open_store
        try:
            self.store = open_store(self.ctx.database_url, one_thread_at_a_time=True)
            self.records = RecordReader(self.ctx.database_url)
        except Exception as exc:
            log.warning("cannot open the database for alerts (%s); will retry", exc)
            self.close()
            return False
        return True

    def run_once(self) -> bool:
        if self.store is None and not self._open():
            return False
        try:
            for _ in range(MAX_FEED_BATCHES):
                if drain_feed(self.store, self.records) < FEED_BATCH:
                    break
            now = time.time()
            if now >= self.next_evaluation:
                self.next_evaluation = now + self.evaluate_every_s
                evaluate_all(self.store, now, self.timezone, self.dashboard_url)
            send_due(self.store, self.smtp)
        except Exception:
            log.exception("alerts pass failed; will retry")
            return False
        return True

    def close(self) -> None:
        for part in (self.records, self.store):
            if part is not None:
                part.close()
        self.store = self.records = None
