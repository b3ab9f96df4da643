"""The host's lanes in a cpu cgroup marked idle, where the machine allows it.

Niceness does not reach across sessions. Linux shares a core between cgroups (and, in the
root cgroup, between sessions: autogroups) before it looks at a thread's niceness, so a
lane at nice 19 weighs as much as the gateway's whole session against the client, the
upstream or any other program whose task wakes on its core, and that task waits behind
the lane until the next scheduler tick: up to 4 ms at HZ 250, the slowest 1% of requests
at one connection (bench/README.md, "The tail at one connection"). A cgroup with cpu.idle
set is idle as a whole: a task of any other group that wakes on its core runs at once,
and the scheduler counts a core that runs only idle tasks as free when it places a woken
task.

cgroup v1's cpu controller takes single threads (its `tasks` file), so the lanes go in and
the job threads, which run passes at the host's priority while the journal is behind, stay
where the host was started. The group is made below the host's own cpu cgroup (whatever a
service manager gave it) and only where that controller is mounted writable and knows
cpu.idle (Linux 5.15+): a host run as root, or in a container that owns its cgroups.
Anywhere else (cgroup v2 moves threads only within threaded subtrees; most services are
not allowed to make cgroups at all) the lanes run at nice 19 alone, as before.
HELIOGRAPH_IDLE_CGROUP=0 keeps them out.

Once the journal falls behind, `leave()` takes every thread of the host out of the group
(its passes run at the host's priority), and the lanes go back in (`enter()`) at their
first pass after the backlog is gone. A lane the machine starves in the group is moved
out by the workers (StarvedLanes), for the rest of its pass.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from heliograph.niceness import thread_niceness

log = logging.getLogger("heliograph.background")

GROUP_NAME = "heliograph-lanes"
ENV_SWITCH = "HELIOGRAPH_IDLE_CGROUP"


def _cpu_hierarchy() -> Path | None:
    """The folder of this process's cgroup in the v1 hierarchy that has the cpu
    controller, or None (no such hierarchy: v2 only, or no cgroups)."""
    try:
        own = _cpu_cgroup("/proc/self/cgroup")
        if not own:
            return None
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                after = fields[fields.index("-") + 1:]
                if after[0] == "cgroup" and "cpu" in after[2].split(","):
                    root, mount = fields[3], fields[4]
                    inside = os.path.relpath(own, root) if own.startswith(root) else own
                    return Path(mount) / inside.lstrip("/")
    except (OSError, ValueError, IndexError):
        pass
    return None


class IdleGroup:
    """The idle cpu group of this process's lanes (made at the first `enter`)."""

    def __init__(self, name: str = GROUP_NAME) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._made = False
        self.path: Path | None = None     # None: not available here
        self._left = False

    def _make(self) -> Path | None:
        if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        parent = _cpu_hierarchy()
        if parent is None:
            return None
        path = parent / self.name
        try:
            path.mkdir(exist_ok=True)
            (path / "cpu.idle").write_text("1")
        except OSError as exc:
            log.debug("lanes stay at nice 19 only: no idle cpu group (%s)", exc)
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return path

    def _group(self) -> Path | None:
        with self._lock:
            if not self._made:
                self._made, self.path = True, self._make()
            return self.path

    def enter(self) -> bool:
        """Move the calling thread into the group unless it is there (and, the first time
        after `leave`, every other thread of this process at its niceness: what lanes
        started, e.g. a PostgreSQL writer's insert threads). Looked up each time, not
        remembered: a worker may have moved a starved lane out (StarvedLanes). False
        where there is no group."""
        path = self._group()
        if path is None:
            return False
        if _cpu_cgroup("/proc/thread-self/cgroup").endswith("/" + self.name):
            return True
        tids = [threading.get_native_id()]
        if self._left:
            self._left = False
            niceness = thread_niceness()
            tids += [tid for tid in _threads() if tid != tids[0]
                     and _niceness(tid) == niceness]
        return _move(tids, path) > 0

    def leave(self) -> None:
        """Every thread of this process out of the group, back where it was started."""
        path = self.path
        if path is None or self._left:
            return
        self._left = True
        try:
            inside = set((path / "tasks").read_text().split())
        except OSError:
            return
        _move([tid for tid in _threads() if str(tid) in inside], path.parent)

    def remove(self) -> None:
        """Delete the group if no thread is left in it (another host's lanes may be)."""
        if self.path is not None:
            try:
                self.path.rmdir()
            except OSError:
                pass


class StarvedLanes:
    """Moves the lanes that get no core out of the idle group, from a process outside it:
    each worker, once a second (background/supervisor.py).

    A lane in the group runs only on cores nothing else wants. While other programs keep
    every core busy it may wait there for seconds holding its host's GIL, and then none
    of the host's threads can run: not the job thread that would see the journal fall
    behind, nor the one renewing a deployment lock (10 s). So the look is taken from
    outside: a lane that wanted a core at two looks in a row (state R) and ran under a
    tenth of the time between them goes back to its host's own group (nice 19 there, as
    without the group), and its next pass enters again."""

    def __init__(self, name: str = GROUP_NAME) -> None:
        parent = _cpu_hierarchy()
        self.path = parent / name if parent is not None else None
        self._seen: dict[str, tuple[bool, float]] = {}   # tid -> (runnable, seconds run)
        self._at = time.monotonic()

    def check(self) -> list[int]:
        """Move the starved lanes out; their thread ids."""
        if self.path is None:
            return []
        try:
            tids = (self.path / "tasks").read_text().split()
        except OSError:   # no group (not made yet, or not here)
            return []
        now = time.monotonic()
        span, self._at = now - self._at, now
        seen, starved = {}, []
        for tid in tids:
            runnable, ran = seen[tid] = thread_ran(f"/proc/{tid}")
            was_runnable, ran_before = self._seen.get(tid, (False, ran))
            if runnable and was_runnable and ran - ran_before < span / 10:
                starved.append(int(tid))
        self._seen = seen
        if starved:
            _move(starved, self.path.parent)
        return starved


def thread_ran(task: str) -> tuple[bool, float]:
    """Whether the thread at /proc path `task` is runnable (running or waiting for a
    core), and the seconds it has run in all; (False, 0.0) when it is gone."""
    try:
        with open(f"{task}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split(None, 1)[0]
        with open(f"{task}/schedstat", "rb") as fh:
            return state == b"R", int(fh.read().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return False, 0.0


def _cpu_cgroup(listing: str) -> str:
    """The cpu cgroup named in a /proc cgroup listing ("" where none is)."""
    try:
        with open(listing) as fh:
            return next((line.rstrip("\n").split(":", 2)[2] for line in fh
                         if "cpu" in line.split(":", 2)[1].split(",")), "")
    except OSError:
        return ""


def _threads() -> list[int]:
    return [int(tid) for tid in os.listdir("/proc/self/task")]


def _niceness(tid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None


def _move(tids: list[int], group: Path) -> int:
    """Write each thread id into the group's tasks; how many moved (a thread may have
    ended meanwhile)."""
    moved = 0
    for tid in tids:
        try:
            with open(group / "tasks", "w") as fh:
                fh.write(str(tid))
            moved += 1
        except OSError:
            pass
    return moved


# One per process: every job's lanes share it.
IDLE_GROUP = IdleGroup()
