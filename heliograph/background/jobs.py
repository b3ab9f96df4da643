"""What a background job is, and the list of jobs the host runs.

A job is a small object: `name`, `scope`, `interval_s`, `run_once()` and `close()`.
The host calls run_once every interval_s on the job's own thread (or on a thread of the
job's at nice 19, priority.py), only while it holds the job's scope lock; when run_once
returns False (the database is down, say) the next call backs off instead. Adding a job:
one module with its class, one line in JOBS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

# "machine": exactly once per machine (per journal folder): the host's own flock covers it.
# "deployment": exactly once across replicas sharing the database: a lock in Redis when
# configured, else a PostgreSQL advisory lock; on SQLite the machine lock already is one.
# The host renews a Redis lock every few seconds and checks it before each run, so a
# deployment job's run_once should take well under the lock's expiry (10 s).
Scope = Literal["machine", "deployment"]


@dataclass(frozen=True)
class JobContext:
    """What the host knows, handed to every job's constructor."""
    journal_dir: Path
    database_url: str
    redis_url: str = ""


class Job(Protocol):
    name: str
    scope: Scope
    interval_s: float
    # Whether the host gives the job one more run after it is asked to stop (the journal
    # writer does: the workers' last segments close just before the gateway exits).
    runs_at_exit: bool

    def run_once(self) -> bool:
        """Do one round of work. False: it failed and the host should back off."""
        ...

    def close(self) -> None: ...


JobFactory = Callable[[JobContext], Job]

# Every job the host runs, as "module:class" (imported by the host only, so the workers
# never load a job's dependencies).
JOBS = [
    "heliograph.background.journal_writer:JournalWriterJob",
    "heliograph.background.search_index:SearchIndexJob",
    "heliograph.background.retention:RetentionJob",
    "heliograph.background.planner_stats:PlannerStatsJob",
    "heliograph.alerts.job:AlertsJob",
]


def load_job(spec: str) -> JobFactory:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)
