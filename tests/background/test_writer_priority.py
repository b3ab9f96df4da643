"""The journal writer yields to serving only while the journal's backlog is small: a pass
over a small backlog runs on a thread at nice 19 (a burst waits in the journal), one over
catch_up_bytes or more on the job's own thread at the host's priority, so a gateway that
saturates the machine does not leave the log ever further behind. Observed through each
thread's CPU time and niceness in /proc, with a real SQLite store and real segments."""

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from heliograph.background.jobs import BACKGROUND_NICENESS, JobContext
from heliograph.background.journal_writer import JournalWriterJob
from heliograph.store.journal import Journal, closed_segments

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                reason="reads each thread's niceness and CPU in /proc")


def write_segment(journal_dir: Path, records: int) -> None:
    journal = Journal(journal_dir)
    for _ in range(records):
        journal.append({"id": str(uuid.uuid4()), "created_at": "2024-03-04T10:00:00.000000Z",
                        "organization": "org1", "model": "gpt-4o-mini",
                        "request": {"messages": [{"role": "user", "content": "x" * 1500}]}})
    journal.close()


def threads() -> dict[int, tuple[int, float]]:
    """Every thread of this process: native id -> (niceness, CPU seconds so far)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:   # ended meanwhile
            continue
        # After the name: state is field 3, utime 14, stime 15, nice 19 (proc(5)).
        found[int(tid)] = (int(fields[16]), (int(fields[11]) + int(fields[12])) / ticks)
    return found


def cpu_by_thread(run) -> tuple[dict[int, tuple[int, float]], float]:
    """Run `run`; the CPU each thread spent meanwhile (niceness, seconds), and the
    calling thread's own."""
    before, mine = threads(), time.thread_time()
    run()
    mine = time.thread_time() - mine
    after = threads()
    return {tid: (nice, cpu - before.get(tid, (nice, 0.0))[1])
            for tid, (nice, cpu) in after.items()}, mine


@pytest.fixture
def job(tmp_path, monkeypatch):
    monkeypatch.setenv("HELIOGRAPH_CONFIG", str(tmp_path / "absent.toml"))
    job = JournalWriterJob(JobContext(tmp_path / "journal",
                                      f"sqlite:///{tmp_path / 'heliograph.db'}"))
    yield job
    job.close()


def test_the_writer_thread_keeps_the_hosts_priority():
    assert JournalWriterJob.niceness is None   # the host leaves its thread as it is


def test_a_small_backlog_is_written_at_nice_19_and_a_large_one_at_full_priority(job):
    own_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert own_niceness < BACKGROUND_NICENESS
    assert job.run_once() is True               # nothing to write: opens the store
    write_segment(job.ctx.journal_dir, 8000)   # ~13 MB: under catch_up_bytes
    spent, mine = cpu_by_thread(lambda: job.run_once())
    assert closed_segments(job.ctx.journal_dir) == []
    at_19 = sum(cpu for nice, cpu in spent.values() if nice == BACKGROUND_NICENESS)
    assert at_19 > 0.1 and mine < at_19 / 4, (spent, mine)

    job.catch_up_bytes = 1024 * 1024            # the same backlog is now a large one
    write_segment(job.ctx.journal_dir, 8000)
    spent, mine = cpu_by_thread(lambda: job.run_once())
    assert closed_segments(job.ctx.journal_dir) == []
    at_19 = sum(cpu for nice, cpu in spent.values() if nice == BACKGROUND_NICENESS)
    assert mine > 0.1 and at_19 < mine / 4, (spent, mine)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own_niceness
    assert job.store is not None
    with job.store.transaction() as cur:
        assert cur.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 16000
