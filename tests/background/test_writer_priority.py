"""The journal writer runs under SCHED_IDLE, so its inserts never keep a request waiting
for a core, and hands its drains to a catch-up thread of normal policy once the journal
holds segments older than catch_up_after_s, so a load that keeps every core busy cannot
starve it. Real threads run by the host's JobRunner, a real journal, real SQLite."""

import os
import sys
import threading
import time

import pytest

from heliograph.analytics import open_analytics
from heliograph.background.host import JobRunner, run_when_idle
from heliograph.background.jobs import JobContext
from heliograph.background.journal_writer import JournalWriterJob
from heliograph.background.locks import HeldLock
from heliograph.store.journal import Journal, closed_segments

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="SCHED_IDLE is Linux's")


def policy_of(thread: threading.Thread) -> int:
    return os.sched_getscheduler(thread.native_id)


def journal_records(journal_dir, ids, age_s: float = 0.0) -> None:
    journal = Journal(journal_dir)
    for request_id in ids:
        journal.append({"id": request_id, "created_at": "2024-03-04T10:00:00.000000Z",
                        "organization": "org1"})
    journal.close()
    if age_s:
        then = time.time() - age_s
        for path in closed_segments(journal_dir):
            os.utime(path, (then, then))


def stored(database_url, ids) -> set[str]:
    reader = open_analytics(database_url)
    try:
        return {i for i in ids if reader.get_request("org1", i) is not None}
    finally:
        reader.close()


def test_the_writer_drains_at_idle_priority_and_catches_up_at_normal(tmp_path):
    ctx = JobContext(tmp_path / "journal", f"sqlite:///{tmp_path / 'heliograph.db'}")
    job = JournalWriterJob(ctx, catch_up_after_s=1.0)
    stopping = threading.Event()
    runner = JobRunner(job, HeldLock(), stopping)
    runner.thread.start()
    try:
        # Fresh segments: drained by the job's own thread, which is SCHED_IDLE.
        journal_records(ctx.journal_dir, ["fresh-1", "fresh-2"])
        deadline = time.monotonic() + 10
        while closed_segments(ctx.journal_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored(ctx.database_url, ["fresh-1", "fresh-2"]) == {"fresh-1", "fresh-2"}
        assert job.catch_ups == 0
        assert policy_of(runner.thread) == os.SCHED_IDLE
        assert policy_of(job._catch_up_thread) == os.SCHED_OTHER

        # A segment that waited longer than catch_up_after_s: the writer is behind, and
        # the drain runs on the catch-up thread instead (through the same connection).
        journal_records(ctx.journal_dir, ["late-1", "late-2"], age_s=5.0)
        deadline = time.monotonic() + 10
        while closed_segments(ctx.journal_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored(ctx.database_url, ["late-1", "late-2"]) == {"late-1", "late-2"}
        assert job.catch_ups >= 1
        assert job.store._shared is not None and job.store._connections == []
    finally:
        stopping.set()
        runner.thread.join(10)
    assert not job._catch_up_thread.is_alive()  # close() ended it


def test_a_thread_put_under_sched_idle_leaves_the_others_alone():
    seen = {}

    def idle():
        seen["ok"] = run_when_idle()
        seen["policy"] = os.sched_getscheduler(0)

    t = threading.Thread(target=idle)
    t.start()
    t.join()
    assert seen == {"ok": True, "policy": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread unchanged
