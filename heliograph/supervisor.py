"""The serve master with several workers: a small process that keeps N workers running.

`heliograph serve --workers N` migrates the database, prepares the workers' environment
and binds the socket, then replaces itself (exec: same pid, same signals) with
`python -m heliograph.supervisor`: a fresh interpreter that imports only this module.
The CLI's process holds click, uvicorn, the store and SQLite (~34 MB RSS); this one
needs none of them (~14 MB). It forks the workers; each imports uvicorn and the app
after the fork (heliograph/server.py `serve_worker`), so the master never loads them.

What it does, as uvicorn's supervisor did: SIGINT/SIGTERM stop the workers (SIGTERM: a
graceful stop) and then itself; SIGHUP replaces every worker; SIGTTIN/SIGTTOU add or
remove one; a worker that dies is replaced, unless it failed to start (exit status 3:
the config or the app is broken and would fail again), which stops the gateway.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import time

# A worker whose app could not start (uvicorn's STARTUP_FAILURE).
STARTUP_FAILURE = 3
# How often the master looks at its workers and the signals it got.
TICK_S = 0.25
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


def exec_supervisor(sock: socket.socket, workers: int, remove_at_exit: list[str]) -> None:
    """Become the supervisor (never returns). Called by `serve` once the socket is bound."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    sock.set_inheritable(True)
    argv = [sys.executable, "-m", "heliograph.supervisor", "--fd", str(sock.fileno()),
            "--workers", str(workers)]
    for path in remove_at_exit:
        argv += ["--remove-at-exit", path]
    os.execv(sys.executable, argv)


def describe_exit(code: int) -> str:
    """A worker's end as the log says it: a signal by name (a SIGBUS or SIGSEGV leaves no
    traceback, so this line is all there is), else the exit status."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


class Supervisor:
    def __init__(self, sock: socket.socket, count: int):
        self.sock = sock
        self.count = count
        self.workers: list[int] = []
        self.signals: list[int] = []
        self.exit_code = 0
        # Only this process holds the write end (each worker closes its copy): a worker's
        # read end reads as end-of-file once the master is gone, however it ended, and
        # the worker stops (background/supervisor.py exit_with_master).
        self.watch_read, self.watch_write = os.pipe()

    def start_worker(self) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: never returns into the supervisor's loop
            for sig in HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            # `import uvicorn` loads watchfiles and anyio for its --reload supervisor,
            # which a worker never runs: ~1 MB RSS per worker. Marked
            # missing, uvicorn falls back to its stat-based reloader class, never used.
            sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
            from heliograph.server import serve_worker

            os.close(self.watch_write)
            code = serve_worker(self.sock, os.getppid(), self.watch_read)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def stop_workers(self, pids: list[int]) -> None:
        """SIGTERM (uvicorn's graceful stop: the journal is closed), then wait for them."""
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

    def run(self) -> int:
        for sig in HANDLED:
            signal.signal(sig, lambda signum, frame: self.signals.append(signum))
        self.workers = [self.start_worker() for _ in range(self.count)]
        while self._tick():
            time.sleep(TICK_S)
        self.stop_workers(self.workers)
        return self.exit_code

    def _tick(self) -> bool:
        """One look at signals and workers; False when the gateway must stop."""
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGINT, signal.SIGTERM):
                return False
            if sig == signal.SIGHUP:  # a new generation: start each, then stop the old
                old, self.workers = self.workers, [self.start_worker() for _ in self.workers]
                self.stop_workers(old)
            elif sig == signal.SIGTTIN:
                self.workers.append(self.start_worker())
            elif sig == signal.SIGTTOU and len(self.workers) > 1:
                self.stop_workers([self.workers.pop()])
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return bool(self.workers)
            if pid == 0:
                return True
            if pid not in self.workers:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILURE:
                print(f"heliograph: worker {pid} failed to start; stopping", file=sys.stderr,
                      flush=True)
                self.workers.remove(pid)
                self.exit_code = STARTUP_FAILURE
                return False
            replacement = self.start_worker()
            print(f"heliograph: worker {pid} {describe_exit(code)}; started worker "
                  f"{replacement}", file=sys.stderr, flush=True)
            self.workers[self.workers.index(pid)] = replacement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heliograph.supervisor")
    parser.add_argument("--fd", type=int, required=True, help="the bound listening socket")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--remove-at-exit", action="append", default=[],
                        help="a folder of this gateway's to remove when it stops")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    try:
        return Supervisor(sock, args.workers).run()
    finally:
        for path in args.remove_at_exit:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
