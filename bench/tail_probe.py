"""The probe bench/tail.py puts into every server process (as sitecustomize): timestamps
of what could make a request slow, on CLOCK_MONOTONIC (the same clock in every process,
and the client's), kept in memory and written to $TAIL_PROBE_DIR/<pid>.json on SIGUSR1.

Recorded, when the module is imported (a meta-path hook patches it after it loads, so a
process that never imports it pays nothing):
- every cyclic GC collection (gc.callbacks): start, duration, generation;
- every ASGI request (uvicorn's RequestResponseCycle.run_asgi): start, end;
- the journal's append and rotate (heliograph.store.journal.Journal);
- the journal writer's inserts (heliograph.store.writer.SegmentWriter._insert).

$TAIL_VARIANT changes one thing, to compare against the unchanged gateway in the same
run (diagnosis only): see VARIANTS below.
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import threading
import time

_clock = time.monotonic
EVENTS: dict[str, list] = {"gc": [], "asgi": [], "append": [], "rotate": [], "insert": [],
                           "supervise": [], "budgets": []}
_gc_start = [0.0]


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_start[0] = _clock()
    else:
        EVENTS["gc"].append((_gc_start[0], _clock(), info["generation"]))


def _dump(*_args) -> None:
    out = os.path.join(os.environ["TAIL_PROBE_DIR"], f"{os.getpid()}.json")
    with open(out, "w") as fh:
        json.dump({"argv": sys.argv, "events": EVENTS}, fh)


def _timed(name: str, fn):
    sink = EVENTS[name]

    def wrapper(*args, **kwargs):
        t0 = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.append((t0, _clock()))
    return wrapper


def _patch_uvicorn(module) -> None:
    cycle = module.RequestResponseCycle
    run_asgi = cycle.run_asgi
    sink = EVENTS["asgi"]

    cpu = time.thread_time  # the loop's thread: at one connection, this request's CPU
    schedstat: list[int] = []   # the loop thread's /proc schedstat, opened on first use

    def waited_ns() -> int:
        """The loop thread's time runnable but not running, so far (schedstat's second
        field): the difference between two requests' ends is what one cycle waited for
        a core, whatever it was waiting in."""
        if not schedstat:
            schedstat.append(os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat",
                                     os.O_RDONLY))
        return int(os.pread(schedstat[0], 100, 0).split()[1])

    async def timed_run_asgi(self, app):
        t0, c0 = _clock(), cpu()
        try:
            return await run_asgi(self, app)
        finally:
            sink.append((t0, _clock(), cpu() - c0, waited_ns()))
    cycle.run_asgi = timed_run_asgi


def _patch_journal(module) -> None:
    module.Journal.append = _timed("append", module.Journal.append)
    module.Journal.rotate = _timed("rotate", module.Journal.rotate)


def _patch_app(module) -> None:
    module.Gateway._supervise = _timed("supervise", module.Gateway._supervise)


def _patch_budgets(module) -> None:
    reload = module.Budgets.reload
    sink = EVENTS["budgets"]

    async def timed_reload(self):
        t0 = _clock()
        try:
            return await reload(self)
        finally:
            sink.append((t0, _clock()))
    module.Budgets.reload = timed_reload


def _patch_writer(module) -> None:
    insert = module.SegmentWriter._insert
    sink = EVENTS["insert"]

    def timed_insert(self, records):
        t0 = _clock()
        try:
            return insert(self, records)
        finally:
            sink.append((t0, _clock(), len(records)))
    module.SegmentWriter._insert = timed_insert


# -- variants -------------------------------------------------------------------------

def _variant_nowriter(module) -> None:
    """The journal writer does nothing (records pile up in the journal)."""
    module.JournalWriterJob.run_once = lambda self: True


def _variant_sched_idle(module) -> None:
    """The whole background host under SCHED_IDLE instead of nice 19."""
    run = module.run

    def idle_run(*args, **kwargs):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return run(*args, **kwargs)
    module.run = idle_run


def _variant_sync_normal(module) -> None:
    """SQLite synchronous=NORMAL (no fsync per commit)."""
    open_ = module.SQLiteStore._open

    def normal_open(self):
        conn = open_(self)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    module.SQLiteStore._open = normal_open


def _variant_gc_off(module) -> None:
    """No cyclic GC in the worker once started."""
    start = module.Gateway.start

    async def start_then_disable(self):
        await start(self)
        gc.disable()
    module.Gateway.start = start_then_disable


def _variant_rotate_1s(module) -> None:
    """The workers close their journal segment every second instead of every 0.2 s."""
    module.JOURNAL_ROTATE_S = 1.0


def _variant_rotate_inline(module) -> None:
    """Rotation as before the spare segment: the new segment created on the loop."""
    def rotate(self):
        self.journal.rotate()
        self._rotation = __import__("asyncio").get_running_loop().call_later(
            module.JOURNAL_ROTATE_S, self._rotate)
    module.Gateway._rotate = rotate
    start = module.Gateway.start

    async def start_without_spare(self):
        self.journal.prepare_spare = lambda: None
        await start(self)
    module.Gateway.start = start_without_spare


def _variant_batch_100(module) -> None:
    """The SQLite journal writer commits at most 100 records a transaction."""
    module.SQLiteStore.writer_batch = 100


def _variant_host_group_19(module) -> None:
    """The background host in a session (so an autogroup) of its own, at autogroup nice
    19: Linux shares CPU between autogroups before niceness counts, so a nice-19 thread
    inside the gateway's session weighs as much as that session's share on its core."""
    run = module.run

    def own_group_run(*args, **kwargs):
        os.setsid()
        with open("/proc/self/autogroup", "w") as fh:
            fh.write("19")
        return run(*args, **kwargs)
    module.run = own_group_run


def _variant_lanes_idle(module) -> None:
    """The background jobs' yielding lanes under SCHED_IDLE instead of nice 19."""
    def idle(_niceness: int) -> bool:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
        return True
    module.set_thread_niceness = idle


def _variant_writer_1s(module) -> None:
    """The journal writer looks for closed segments every second instead of every 0.1 s
    (so commits, each with its fsync, about once a second)."""
    module.IDLE_INTERVAL_S = 1.0


def _variant_short_slice(module) -> None:
    """The background jobs' yielding lanes at nice 19 with EEVDF's shortest slice
    (0.1 ms, sched_setattr's sched_runtime, Linux 6.12+): a task keeps its core against
    a waking one for at most its slice, whatever its niceness."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)

    def short(niceness: int) -> bool:
        # struct sched_attr (VER0, 48 bytes): size, policy, flags, nice, priority,
        # runtime, deadline, period.
        attr = struct.pack("IIQiIQQQ", 48, 0, 0, niceness, 0, 100_000, 0, 0)
        buf = ctypes.create_string_buffer(attr)
        if libc.syscall(314, 0, buf, 0) != 0:   # SYS_sched_setattr on x86-64
            raise OSError(ctypes.get_errno(), "sched_setattr")
        return True
    module.set_thread_niceness = short


def _variant_sqlite_gives_way(module) -> None:
    """SQLite statements run on a nice-19 thread sleep 50 µs every 0.3 ms of work (a
    progress handler), so a task woken onto their core waits at most that long."""
    local = threading.local()

    def give_way() -> int:
        now = time.perf_counter()
        last = getattr(local, "last", None)
        if last is None:
            local.lane = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) >= 19
            local.last = now
        elif local.lane and now - last > 0.0003:
            time.sleep(0.00005)
            local.last = time.perf_counter()
        return 0
    open_ = module.SQLiteStore._open

    def open_giving_way(self):
        conn = open_(self)
        conn.set_progress_handler(give_way, 1000)
        return conn
    module.SQLiteStore._open = open_giving_way


def _idle_cgroup() -> str:
    """A cgroup-v1 cpu group with cpu.idle set (root, a writable cpu controller)."""
    path = "/sys/fs/cgroup/cpu/heliograph-tail-idle"
    os.makedirs(path, exist_ok=True)
    with open(f"{path}/cpu.idle", "w") as fh:
        fh.write("1")
    return path


def _variant_no_idle_group(module) -> None:
    """The lanes at nice 19 only, outside any idle cpu cgroup (main before session 17)."""
    module.IDLE_GROUP._made = True
    module.IDLE_GROUP.path = None

def _variant_host_cgroup_idle(module) -> None:
    """The whole background host in a cpu cgroup with cpu.idle (its passes at the
    host's priority too: starved while the workers saturate the machine)."""
    run = module.run

    def idle_run(*args, **kwargs):
        with open(f"{_idle_cgroup()}/cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))
        return run(*args, **kwargs)
    module.run = idle_run


VARIANTS = {
    "no_idle_group": ("heliograph.background.idle_group", _variant_no_idle_group),
    "host_cgroup_idle": ("heliograph.background.host", _variant_host_cgroup_idle),
    "sqlite_gives_way": ("heliograph.store.sqlite", _variant_sqlite_gives_way),
    "short_slice": ("heliograph.background.priority", _variant_short_slice),
    "writer_1s": ("heliograph.background.journal_writer", _variant_writer_1s),
    "host_group_19": ("heliograph.background.host", _variant_host_group_19),
    "lanes_idle": ("heliograph.background.priority", _variant_lanes_idle),
    "batch_100": ("heliograph.store.sqlite", _variant_batch_100),
    "rotate_inline": ("heliograph.app", _variant_rotate_inline),
    "rotate_1s": ("heliograph.app", _variant_rotate_1s),
    "nowriter": ("heliograph.background.journal_writer", _variant_nowriter),
    "sched_idle": ("heliograph.background.host", _variant_sched_idle),
    "sync_normal": ("heliograph.store.sqlite", _variant_sync_normal),
    "gc_off": ("heliograph.app", _variant_gc_off),
}

PATCHES = {
    "uvicorn.protocols.http.httptools_impl": [_patch_uvicorn],
    "heliograph.store.journal": [_patch_journal],
    "heliograph.store.writer": [_patch_writer],
    "heliograph.app": [_patch_app],
    "heliograph.alerts.budgets": [_patch_budgets],
}


class _PatchAfterLoad(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        patches = PATCHES.get(fullname)
        if not patches:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            for patch in patches:
                patch(module)
        spec.loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


def install() -> None:
    if not os.environ.get("TAIL_PROBE_DIR"):
        return
    for name in filter(None, os.environ.get("TAIL_VARIANT", "").split(",")):
        module, patch = VARIANTS[name]
        PATCHES.setdefault(module, []).append(patch)
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _dump)
    sys.meta_path.insert(0, _PatchAfterLoad())
