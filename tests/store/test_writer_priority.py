"""The background host's passes yield to serving only while the journal keeps up
(background/priority.py): a pass runs on a lane thread at nice 19 unless the journal holds
a backlog of CATCH_UP_BYTES or more, then on the job's own thread at the host's priority,
so a gateway that saturates the machine does not leave the log ever further behind.
Through the host's real JobRunner and journal writer on each store, observed in each
thread's CPU time and niceness in /proc."""

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from heliograph.background.host import JobRunner
from heliograph.background.jobs import JobContext
from heliograph.background.journal_writer import JournalWriterJob
from heliograph.background.locks import HeldLock
from heliograph.background.priority import (
    BACKGROUND_NICENESS,
    CATCH_UP_AGE_S,
    CATCH_UP_BYTES,
    journal_behind,
)
from heliograph.store.journal import Journal, claim_segment, closed_segments

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                reason="reads each thread's niceness and CPU in /proc")


def write_segments(journal_dir: Path, records: int, per_segment: int = 500) -> None:
    for _ in range(0, records, per_segment):
        journal = Journal(journal_dir)
        for _ in range(per_segment):
            journal.append({"id": str(uuid.uuid4()),
                            "created_at": "2024-03-04T10:00:00.000000Z",
                            "organization": "org1", "model": "gpt-4o-mini",
                            "request": {"messages": [{"role": "user",
                                                      "content": "x" * 1500}]}})
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


def cpu_by_niceness(run) -> dict[int, float]:
    """Run `run`; the CPU seconds this process's other threads spent meanwhile, by
    niceness (the calling one writes the journal)."""
    before = threads()
    run()
    spent: dict[int, float] = {}
    for tid, (nice, cpu) in threads().items():
        if tid == threading.get_native_id():
            continue
        spent[nice] = spent.get(nice, 0.0) + cpu - before.get(tid, (nice, 0.0))[1]
    return spent


def drained(journal_dir: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while closed_segments(journal_dir):
        assert time.monotonic() < deadline, "the writer never emptied the journal"
        time.sleep(0.02)


def test_passes_run_at_nice_19_until_the_journal_falls_behind(store_url, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("HELIOGRAPH_CONFIG", str(tmp_path / "absent.toml"))
    host = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert host < BACKGROUND_NICENESS
    ctx = JobContext(tmp_path / "journal", store_url)
    ctx.journal_dir.mkdir()
    job = JournalWriterJob(ctx)
    behind = threading.Event()   # stands for journal_behind, tested below
    stopping = threading.Event()
    runner = JobRunner(job, HeldLock(), stopping, behind=behind.is_set)
    runner.thread.start()
    try:
        write_segments(ctx.journal_dir, 500)   # the first pass, at the host's priority,
        drained(ctx.journal_dir)               # opens the store

        def backlog() -> None:
            write_segments(ctx.journal_dir, 8000)   # ~13 MB
            drained(ctx.journal_dir)

        keeping_up = cpu_by_niceness(backlog)
        behind.set()
        falling_behind = cpu_by_niceness(backlog)
    finally:
        stopping.set()
        runner.thread.join()
    # Enough CPU to tell the lanes apart (CPU is counted in 10 ms ticks): a PostgreSQL
    # writer leaves most of the work to the server and spent 0.08-0.10 s here.
    at_19 = keeping_up.get(BACKGROUND_NICENESS, 0.0)
    assert at_19 > 0.05 and keeping_up.get(host, 0.0) < at_19 / 3, keeping_up
    at_host = falling_behind.get(host, 0.0)
    assert at_host > 0.05 and falling_behind.get(BACKGROUND_NICENESS, 0.0) < at_host / 3, \
        falling_behind
    # What the first pass started kept the host's priority (SQLite's checkpoint thread,
    # which a pass at full priority may wait for).
    for thread in threading.enumerate():
        if thread.name == "heliograph-checkpoint":
            assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == host


def test_the_journal_is_behind_from_catch_up_bytes_of_closed_segments(tmp_path):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    write_segments(journal_dir, 10)
    assert not journal_behind(journal_dir)
    with open(journal_dir / "zz-large.jsonl", "wb") as f:   # sparse: only its size counts
        f.truncate(CATCH_UP_BYTES)
    assert journal_behind(journal_dir)


def age(paths: list[Path], seconds: float) -> None:
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def test_the_journal_is_behind_once_a_record_waits_catch_up_age(tmp_path):
    """Lanes in an idle cpu group run only on cores nothing else wants: on a machine busy
    with other programs the records would wait for as long as it stays busy."""
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    write_segments(journal_dir, 10)
    (segment,) = closed_segments(journal_dir)
    age([segment], CATCH_UP_AGE_S - 1)
    assert not journal_behind(journal_dir)
    age([segment], CATCH_UP_AGE_S + 1)
    assert journal_behind(journal_dir)


def test_a_segment_left_for_a_newer_version_does_not_keep_the_journal_behind(tmp_path):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    newer = journal_dir / "1-1-1.jsonl"
    newer.write_bytes(b'["a record of a layout this version does not know"]\n')
    age([newer], CATCH_UP_AGE_S + 60)
    assert journal_behind(journal_dir)        # until the writer has looked at it
    assert claim_segment(newer) is None        # left in place, reported
    assert newer.exists() and not journal_behind(journal_dir)
    (journal_dir / "2-2-2.jsonl").write_bytes(b"")   # a worker's idle open segment
    age([journal_dir / "2-2-2.jsonl"], CATCH_UP_AGE_S + 60)
    assert not journal_behind(journal_dir)
