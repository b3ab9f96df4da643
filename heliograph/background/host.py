"""The background host process: `python -m heliograph.background`.

One per machine (per journal folder): it holds the flock HOST_LOCK in the journal folder
for its whole life (handed over locked by the worker that starts it, see supervisor.py;
started by hand, it takes the lock or exits). A killed host is back within a second. It
runs every job on a thread of its own — a slow job never delays the journal writer — and
lives as long as the gateway: when the gateway's process is gone it gives the jobs that
ask for it (the writer) a last run, and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from heliograph.background.idle_group import IDLE_GROUP, IdleGroup
from heliograph.background.jobs import JOBS, Job, JobContext, load_job
from heliograph.background.locks import HOST_LOCK, FileLock, HeldLock, deployment_lock
from heliograph.background.memory import one_heap_arena
from heliograph.background.priority import Lanes, journal_behind

log = logging.getLogger("heliograph.background")

# After a failed run_once, the next waits this long (then the next step, and so on).
RETRY_BACKOFF_S = (0.5, 1, 2, 5, 10)
# How long a Redis deployment lock outlives a host that stopped renewing it.
DEFAULT_LOCK_TTL_S = 10.0
# How often the host looks whether the gateway is still there.
GATEWAY_CHECK_S = 0.2
# After SIGTERM the host still waits for the gateway to exit (its workers close their
# last journal segments while stopping), but no longer than uvicorn's graceful timeout.
TERM_GRACE_S = 20.0


def process_alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie is not: it has exited, only unreaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            # The state follows the parenthesised command name, which may hold spaces.
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class JobRunner:
    """Runs one job on its own thread while its lock is held, backing off on failure."""

    def __init__(self, job: Job, lock, stopping: threading.Event,
                 behind: Callable[[], bool] = lambda: False,
                 idle_group: IdleGroup = IDLE_GROUP):
        self.job = job
        self.lock = lock
        self.stopping = stopping
        # This thread keeps the host's priority; passes run below it unless the log is
        # behind (priority.py).
        self.lanes = Lanes(f"job-{job.name}", behind, idle_group)
        self._opened = False
        self.thread = threading.Thread(target=self._loop, name=f"job-{job.name}",
                                       daemon=True)

    def _run_once(self, lanes: Lanes | None = None) -> bool:
        try:
            return bool(lanes.run(self.job.run_once) if lanes else self.job.run_once())
        except Exception:
            log.exception("background job %s failed", self.job.name)
            return False

    def _loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            if self.lock.held:
                # Until a pass succeeds, passes run on this thread: what the first one
                # opens (a store, and the threads it starts: SQLite's checkpoints, the
                # PostgreSQL pool's) then runs at the host's priority, not at the lane's.
                ok = self._run_once(self.lanes if self._opened else None)
                self._opened = self._opened or ok
                failures = 0 if ok else failures + 1
            delay = (self.job.interval_s if not failures
                     else RETRY_BACKOFF_S[min(failures, len(RETRY_BACKOFF_S)) - 1])
            self.stopping.wait(delay)
        self.lanes.close()
        if self.job.runs_at_exit and self.lock.held:
            self._run_once()   # at full priority: serving is over
        try:
            self.job.close()
        except Exception:
            log.exception("closing background job %s failed", self.job.name)


def _keep_locks(locks: list, stopping: threading.Event, renew_s: float) -> None:
    while True:
        for lock in locks:
            lock.acquire_or_renew()
        if stopping.wait(renew_s):
            return


def run(ctx: JobContext, job_specs: list[str], gateway_pid: int = 0,
        lock_ttl_s: float = DEFAULT_LOCK_TTL_S, lock_fd: int = -1) -> int:
    host_lock = FileLock(ctx.journal_dir / HOST_LOCK)
    if lock_fd >= 0:
        host_lock.adopt(lock_fd)
    elif not host_lock.try_acquire():
        return 0  # another host serves this machine

    term_at: list[float] = []
    signal.signal(signal.SIGTERM, lambda *_: term_at.append(time.monotonic()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the gateway; we follow it
    stopping = threading.Event()
    machine = HeldLock()  # the host lock, held above
    runners, deployment_locks = [], []
    for spec in job_specs:
        job = load_job(spec)(ctx)
        lock = machine
        if job.scope == "deployment":
            lock = deployment_lock(job.name, ctx.database_url, ctx.redis_url, lock_ttl_s)
            deployment_locks.append(lock)
        runners.append(JobRunner(job, lock, stopping,
                                 behind=partial(journal_behind, ctx.journal_dir)))
    keeper = None
    if deployment_locks:
        keeper = threading.Thread(target=_keep_locks, name="deployment-locks", daemon=True,
                                  args=(deployment_locks, stopping, lock_ttl_s / 3))
        keeper.start()
    for runner in runners:
        runner.thread.start()

    while gateway_pid == 0 or process_alive(gateway_pid):
        if term_at and (gateway_pid == 0 or time.monotonic() - term_at[0] > TERM_GRACE_S):
            break
        time.sleep(GATEWAY_CHECK_S)

    stopping.set()
    for runner in runners:
        runner.thread.join()
    if keeper is not None:
        keeper.join()
    for lock in deployment_locks:
        lock.release()
    IDLE_GROUP.remove()   # the lanes have ended
    host_lock.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heliograph.background")
    parser.add_argument("--journal", required=True, help="the journal folder")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--gateway-pid", type=int, default=0,
                        help="exit when this process is gone (0: run until SIGTERM)")
    parser.add_argument("--job", action="append", default=None,
                        help="module:Class of a job to run instead of the built-in list")
    parser.add_argument("--lock-fd", type=int, default=-1,
                        help="an inherited fd already holding the host lock")
    parser.add_argument("--lock-ttl", type=float, default=DEFAULT_LOCK_TTL_S,
                        help="expiry of a Redis deployment lock, seconds")
    args = parser.parse_args(argv)
    # Before any thread starts: the jobs' threads then share one malloc arena (memory.py).
    one_heap_arena()
    logging.basicConfig(level=logging.WARNING, format="heliograph background: %(message)s")
    journal = Path(args.journal)
    journal.mkdir(parents=True, exist_ok=True)
    ctx = JobContext(journal, args.database_url, args.redis_url)
    return run(ctx, args.job or JOBS, args.gateway_pid, args.lock_ttl, args.lock_fd)
