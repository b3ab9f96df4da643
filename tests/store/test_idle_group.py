"""The host's lanes run in a cpu cgroup marked idle where the machine allows it
(background/idle_group.py): niceness does not reach the tasks of other sessions woken on a
lane's core, an idle group does. The job threads, which run passes at the host's priority
once the journal is behind, stay out; when it falls behind the lanes leave the group too,
and go back in once it has caught up; a lane the machine starves there is moved out by
another process (each worker), since it may hold its host's GIL.

Through the host's real JobRunner and journal writer on SQLite, and a real `heliograph
serve`, read in cgroup v1's own files and in /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import openai
import pytest
from servers import ADMIN_KEY, Gateway, background_hosts, wait
from test_writer_priority import drained, write_segments

from heliograph.background.host import JobRunner
from heliograph.background.idle_group import GROUP_NAME, IdleGroup, _cpu_hierarchy
from heliograph.background.jobs import JobContext
from heliograph.background.journal_writer import JournalWriterJob
from heliograph.background.locks import HeldLock
from heliograph.background.priority import BACKGROUND_NICENESS, Lanes


def _controller() -> Path | None:
    path = _cpu_hierarchy()
    if path is None or not (path / "cpu.idle").exists() or not os.access(path, os.W_OK):
        return None
    return path


pytestmark = pytest.mark.skipif(
    _controller() is None,
    reason="needs a writable cgroup v1 cpu controller with cpu.idle (Linux 5.15+, root or "
           "a container owning its cgroups; this project's CI machines have one)")


def in_group(group: Path, pid: int | None = None) -> set[int]:
    """The threads of pid (this process by default) in the group."""
    inside = {int(tid) for tid in (group / "tasks").read_text().split()}
    return inside & {int(tid) for tid in os.listdir(f"/proc/{pid or os.getpid()}/task")}


def niceness(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@pytest.fixture
def group():
    made = IdleGroup(f"heliograph-test-{uuid.uuid4().hex[:8]}")
    yield made
    if made.path is not None:   # whatever the test left inside goes back first
        for tid in in_group(made.path):
            (made.path.parent / "tasks").write_text(str(tid))
        made.remove()
        assert not made.path.exists()


def test_lanes_run_in_the_idle_group_and_leave_it_while_the_journal_is_behind(
        tmp_path, group, monkeypatch):
    monkeypatch.setenv("HELIOGRAPH_CONFIG", str(tmp_path / "absent.toml"))
    ctx = JobContext(tmp_path / "journal", f"sqlite:///{tmp_path / 'log.db'}")
    ctx.journal_dir.mkdir()
    behind = threading.Event()
    stopping = threading.Event()
    runner = JobRunner(JournalWriterJob(ctx), HeldLock(), stopping, behind=behind.is_set,
                       idle_group=group)
    runner.thread.start()

    def backlog(records: int = 1500) -> None:
        write_segments(ctx.journal_dir, records)
        drained(ctx.journal_dir)

    try:
        backlog(500)    # the first pass opens the store, on the job's thread
        backlog()       # then the lane's
        assert group.path is not None and group.path.parent == _controller()
        assert (group.path / "cpu.idle").read_text().strip() == "1"
        # (A pass starved by other work on the machine leaves the group until the
        # lane's next pass, every 0.1 s: so waited for.)
        lanes = wait(lambda: in_group(group.path), what="the lane in the group")
        assert all(niceness(tid) == BACKGROUND_NICENESS for tid in lanes)
        assert runner.thread.native_id not in lanes   # the job's own thread stays out

        behind.set()    # passes at the host's priority, nothing of the host idle
        backlog()
        assert in_group(group.path) == set()

        behind.clear()  # caught up: the lane goes back in
        backlog()
        wait(lambda: in_group(group.path) == lanes, what="the lane back in the group")
    finally:
        stopping.set()
        runner.thread.join()
    assert in_group(group.path) == set()   # the lane thread ended with the runner


WATCH = """
import sys, time
from heliograph.background.idle_group import StarvedLanes
watch, started = StarvedLanes(sys.argv[1]), time.monotonic()
while time.monotonic() - started < 20:
    moved = watch.check()
    if moved:
        print(*moved, round(time.monotonic() - started, 2))
        break
    time.sleep(0.5)
"""


def test_a_lane_starved_by_other_programs_is_moved_out_by_another_process(group):
    """A pass that gets no core in the idle group (here: one busy process per core) may
    hold its host's GIL, and SQLite's write lock that workers wait for: a process
    outside (each worker, once a second) moves it out; the pass goes on."""
    lanes = Lanes("test", lambda: False, group)
    release = threading.Event()
    seen: dict[str, object] = {}

    def busy_pass() -> str:
        seen["entered"] = threading.get_native_id() in in_group(group.path)
        seen["tid"] = threading.get_native_id()
        while not release.is_set():
            sum(range(1000))
        return "done"

    passing = threading.Thread(target=lambda: seen.setdefault("result", lanes.run(busy_pass)))
    spinners: list[subprocess.Popen] = []
    try:
        passing.start()
        wait(lambda: "tid" in seen, what="the pass on its lane")
        assert seen["entered"]
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(os.cpu_count() or 1)]
        watcher = subprocess.run([sys.executable, "-c", WATCH, group.name],
                                 capture_output=True, text=True, timeout=60)
        assert watcher.returncode == 0, watcher.stderr
        moved, after = watcher.stdout.split()[:-1], float(watcher.stdout.split()[-1])
        assert moved == [str(seen["tid"])] and after < 5.0, watcher.stdout
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        release.set()
        passing.join()
    assert seen["tid"] not in in_group(group.path) and seen["result"] == "done"
    lanes.run(lambda: None)   # its next pass goes back in
    assert in_group(group.path) == {seen["tid"]}
    lanes.close()


def test_nothing_is_made_when_switched_off(monkeypatch):
    monkeypatch.setenv("HELIOGRAPH_IDLE_CGROUP", "0")
    name = f"heliograph-test-{uuid.uuid4().hex[:8]}"
    off = IdleGroup(name)
    assert off.enter() is False
    assert off.path is None and not (_controller() / name).exists()


def host_threads_by_group(journal: Path) -> dict[int, str]:
    """The background host's threads: tid -> the cpu cgroup it is in."""
    (host,) = wait(lambda: background_hosts(journal), what="the background host")
    found = {}
    for tid in os.listdir(f"/proc/{host}/task"):
        try:
            lines = Path(f"/proc/{host}/task/{tid}/cgroup").read_text().splitlines()
        except OSError:
            continue
        found[int(tid)] = next(line.split(":", 2)[2] for line in lines
                               if "cpu" in line.split(":", 2)[1].split(","))
    return found


@pytest.mark.parametrize("switch", ["", "0"])
def test_a_served_gateways_host_puts_its_lanes_in_the_idle_group(upstream, tmp_path,
                                                                 switch):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}",
                 env={"HELIOGRAPH_IDLE_CGROUP": switch} if switch else None)
    journal = tmp_path / "journal"
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        for _ in range(30):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        def idle(where: str) -> bool:
            return where.rstrip("/").endswith("/" + GROUP_NAME)

        def lanes_inside() -> dict[int, str] | None:
            found = host_threads_by_group(journal)
            if not switch and not any(idle(where) for where in found.values()):
                return None   # a lane starved by other work is out until its next pass
            if not any(niceness(tid) == BACKGROUND_NICENESS for tid in found):
                return None   # no lane started yet
            return found

        for _ in range(5):   # a few looks, 0.2 s apart
            for tid, where in wait(lanes_inside, what="the host's lanes").items():
                lane = niceness(tid) == BACKGROUND_NICENESS
                assert not idle(where) or (lane and not switch), (tid, where)
            time.sleep(0.2)
    finally:
        gw.stop()
    # The host removes the group as it exits, unless another gateway's lanes are in it.
    wait(lambda: not background_hosts(journal), what="the host's exit")
    made = _controller() / GROUP_NAME
    assert not made.exists() or (made / "tasks").read_text().split()
