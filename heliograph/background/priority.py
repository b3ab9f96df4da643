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
There they run only on cores nothing else wants, so a machine busy with other programs
could keep records out of the database for as long as it stays busy: the journal is also
behind once its oldest record waits CATCH_UP_AGE_S.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from heliograph.background.idle_group import IDLE_GROUP, IdleGroup
from heliograph.niceness import set_thread_niceness
from heliograph.store.journal import closed_segments, left_in_place, waiting

BACKGROUND_NICENESS = 19
# About 6 s of a saturated 2-worker gateway's records (bench/run.py): a burst shorter than
# that is served at full speed and written after it.
CATCH_UP_BYTES = 32 * 1024 * 1024
# Far above a keeping-up writer's delay (segments close every 0.2 s and are written 0.1 s
# later), and about how long a saturated gateway takes to fill CATCH_UP_BYTES anyway.
CATCH_UP_AGE_S = 5.0

T = TypeVar("T")


def journal_behind(journal_dir: Path) -> bool:
    """CATCH_UP_BYTES or more of records wait in the journal, or one for CATCH_UP_AGE_S
    (segments left for a newer version aside: they wait for that version)."""
    _, size, oldest = waiting(path for path in closed_segments(journal_dir)
                              if not left_in_place(path))
    return size >= CATCH_UP_BYTES or (oldest is not None
                                      and time.time() - oldest >= CATCH_UP_AGE_S)


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
        return self._yielding.submit(self._idle, work).result()

    def _idle(self, work: Callable[[], T]) -> T:
        self.idle_group.enter()
        return work()

    def close(self) -> None:
        if self._yielding is not None:
            self._yielding.shutdown(wait=True)
