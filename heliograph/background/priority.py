"""The priority background work runs at: below serving while the log keeps up, the
host's own once it falls behind.

Background work yields to serving: under a burst the journal absorbs the records and the
jobs catch up when the workers leave them CPU. But at nice 19 a job gets ~1/70 of a
core's share while the workers saturate the machine, and under a load that lasts the
journal grew 5.3 MB/s for as long as it lasted (bench/README.md). So each job's thread
keeps the host's priority and runs a pass itself while the journal holds CATCH_UP_BYTES or
more of records not yet in the database, and hands the pass to a lane thread at
BACKGROUND_NICENESS otherwise. Every job, not only the writer: a pass starved at nice 19
while holding SQLite's one write lock (the search index's, an ANALYZE) would hold up a
writer at full priority for as long. Two threads because one cannot do both: lowering a
niceness once raised needs privilege (niceness.py). Where the machine allows it the
lanes also run in an idle cpu cgroup (idle_group.py: niceness alone does not reach the
tasks of other sessions woken on a lane's core), left as soon as the journal is behind.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TypeVar

from heliograph.background.idle_group import IDLE_GROUP, IdleGroup
from heliograph.niceness import set_thread_niceness
from heliograph.store.journal import closed_segments
from heliograph.store.writer import backlog_bytes

BACKGROUND_NICENESS = 19
# About 6 s of a saturated 2-worker gateway's records (bench/run.py): a burst shorter than
# that is served at full speed and written after it.
CATCH_UP_BYTES = 32 * 1024 * 1024
# While a lane's pass runs, how often the job's thread looks whether the journal fell
# behind meanwhile (a pass starved in the idle group then leaves it).
BEHIND_CHECK_S = 0.5

T = TypeVar("T")


def journal_behind(journal_dir: Path) -> bool:
    return backlog_bytes(closed_segments(journal_dir)) >= CATCH_UP_BYTES


class Lanes:
    """Runs a job's passes on the calling thread while `behind()`, else on a thread of
    its own at BACKGROUND_NICENESS (started by the first such pass)."""

    def __init__(self, name: str, behind: Callable[[], bool],
                 idle_group: IdleGroup = IDLE_GROUP):
        self.name = name
        self.behind = behind
        self.idle_group = idle_group
        self._yielding: ThreadPoolExecutor | None = None

    def run(self, work: Callable[[], T]) -> T:
        if self.behind():
            self.idle_group.leave()
            return work()
        if self._yielding is None:
            self._yielding = ThreadPoolExecutor(
                1, thread_name_prefix=f"{self.name}-yielding",
                initializer=set_thread_niceness, initargs=(BACKGROUND_NICENESS,))
        pass_ = self._yielding.submit(self._idle, work)
        while True:
            try:
                return pass_.result(BEHIND_CHECK_S)
            except FutureTimeout:
                if self.behind():
                    self.idle_group.leave()
                    return pass_.result()

    def _idle(self, work: Callable[[], T]) -> T:
        self.idle_group.enter()
        return work()

    def close(self) -> None:
        if self._yielding is not None:
            self._yielding.shutdown(wait=True)
