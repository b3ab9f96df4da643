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

A lane starved in the idle group would keep its pass, and the job thread waiting for it,
from running at the host's priority once the journal falls behind: `leave()` takes every
thread of the host out of the group, and the lanes go back in (`enter()`) at their first
pass after the backlog is gone.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from heliograph.niceness import thread_niceness

log = logging.getLogger("heliograph.background")

GROUP_NAME = "heliograph-lanes"
ENV_SWITCH = "HELIOGRAPH_IDLE_CGROUP"


def _cpu_hierarchy() -> Path | None:
    """The folder of this process's cgroup in the v1 hierarchy that has the cpu
    controller, or None (no such hierarchy: v2 only, or no cgroups)."""
    try:
        with open("/proc/self/cgroup") as fh:
            own = next((line.rstrip("\n").split(":", 2)[2] for line in fh
                        if "cpu" in line.split(":", 2)[1].split(",")), None)
        if own is None:
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
        # Bumped by each leave(); a thread re-enters once per generation (moving a thread
        # takes a lock the whole machine's forks and exits wait for: not once a pass).
        self._generation = 0
        self._left = False
        self._local = threading.local()

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
        """Move the calling thread into the group (and, the first time after `leave`,
        every other thread of this process at its niceness: what lanes started, e.g. a
        PostgreSQL writer's insert threads). False where there is no group."""
        path = self._group()
        if path is None:
            return False
        if getattr(self._local, "generation", -1) == self._generation:
            return True
        self._local.generation = self._generation
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
        self._generation += 1
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
