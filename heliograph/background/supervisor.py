"""The worker's side of the background host, called once a second from its event loop.

Every worker tries the host's flock and, when it gets it, starts a host that inherits
the locked file: the lock passes from worker to host without ever being free, so there is
exactly one host per machine however many workers there are, and a killed host (whose
death frees the lock) is replaced within a second. The same tick
makes a worker exit when the serve master is gone (besides a pipe from the master that
the worker's loop watches, or PR_SET_PDEATHSIG on Linux for workers of uvicorn's
supervisor), so a SIGKILLed master leaves no workers serving on its port. And it moves
the host's lanes that get no core out of their idle cpu group (idle_group.StarvedLanes:
the host cannot see that itself while a starved lane holds its GIL).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

from heliograph.background.idle_group import StarvedLanes
from heliograph.background.locks import HOST_LOCK, try_flock

log = logging.getLogger("heliograph.background")

SUPERVISE_EVERY_S = 1.0
_PR_SET_PDEATHSIG = 1


# Set in a worker forked by heliograph/supervisor.py (the serve master's pid); 0 otherwise.
MASTER_PID = 0
# Set with it: the read end of a pipe whose write end only the master holds. It reads as
# end-of-file as soon as the master has exited, however it ended (SIGKILL too), so the
# worker's loop watching it learns what PR_SET_PDEATHSIG would tell, as soon. The
# prctl call needs ctypes, ~0.35 MB RSS a worker (bench/README.md, session 15).
MASTER_WATCH_FD = -1


def _master_pid() -> int:
    if MASTER_PID:
        return MASTER_PID
    parent = multiprocessing.parent_process()  # a worker spawned by uvicorn's supervisor
    return parent.pid if parent is not None and parent.pid is not None else 0


def exit_with_master() -> int:
    """In a serve worker, on its running loop: SIGTERM ourselves when the master dies (a
    graceful stop: the journal is closed), told by the watch pipe or by the kernel.
    Returns the master's pid, 0 without one (one worker runs in the serve process
    itself)."""
    master = _master_pid()
    if not master:
        return 0
    if MASTER_WATCH_FD >= 0:
        asyncio.get_running_loop().add_reader(MASTER_WATCH_FD, _master_gone)
    elif sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            log.warning("PR_SET_PDEATHSIG unavailable; relying on the parent watch")
    if os.getppid() != master:  # the master died before the kernel could tell us
        os.kill(os.getpid(), signal.SIGTERM)
    return master


def _master_gone() -> None:
    """The master's end of the watch pipe closed: it has exited."""
    asyncio.get_running_loop().remove_reader(MASTER_WATCH_FD)
    log.warning("the serve master has exited; stopping this worker")
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful stop: the journal is closed


class HostSupervisor:
    """One per worker; its tick() runs on the worker's loop every SUPERVISE_EVERY_S.
    Built at worker startup, where it also arms exit_with_master()."""

    def __init__(self, journal_dir: Path, database_url: str, redis_url: str = ""):
        self.journal_dir = Path(journal_dir)
        self.database_url = database_url
        self.redis_url = redis_url
        self.master_pid = exit_with_master()
        # The host lives as long as the gateway: the master, or this process alone.
        self.gateway_pid = self.master_pid or os.getpid()
        self._host: subprocess.Popen | None = None
        self.starved_lanes = StarvedLanes()

    def tick(self) -> None:
        if self.master_pid and os.getppid() != self.master_pid:
            log.warning("the serve master is gone; stopping this worker")
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.starved_lanes.check()
        if self._host is not None and self._host.poll() is None:
            return  # ours is starting (not holding the lock yet) or running
        self._host = None  # reaped, if it was ours
        try:
            lock_fd = try_flock(self.journal_dir / HOST_LOCK)
        except OSError:
            log.exception("cannot open the background host's lock file")
            return
        if lock_fd is None:
            return  # a host is running
        try:
            self._host = self._spawn(lock_fd)
        finally:
            os.close(lock_fd)  # the host's inherited copy keeps the lock

    def _spawn(self, lock_fd: int) -> subprocess.Popen:
        argv = [sys.executable, "-m", "heliograph.background",
                "--journal", str(self.journal_dir), "--database-url", self.database_url,
                "--gateway-pid", str(self.gateway_pid), "--lock-fd", str(lock_fd)]
        if self.redis_url:
            argv += ["--redis-url", self.redis_url]
        return subprocess.Popen(argv, pass_fds=(lock_fd,))
