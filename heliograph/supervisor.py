"""The serve master with several workers: a small process that keeps N workers running.

`heliograph serve --workers N` migrates the database, prepares the workers' environment
and binds the socket, then replaces itself (exec: same pid, same signals) with this
module in a fresh interpreter started without `site` (`python -S`): it imports only the
standard library's os, signal, sys and time, so it needs no site-packages (its own
package is put at the end of sys.path by hand), nor anything a site-packages `.pth`
file loads. The CLI's process holds click, uvicorn, the store and SQLite (~34 MB RSS);
with `site` and argparse/socket/shutil this process was ~14.5 MB, without them ~9.8
(bench/README.md, session 16).

It forks the workers; each runs `site` itself first (heliograph/worker.py: the
site-packages, their `.pth` files), then imports uvicorn and the app, so the master never
loads them. Forked, not exec'd: a worker then does not count the pages of libpython that
only an interpreter's start touches (~0.9 MB a worker, bench/README.md, session 16).

What it does, as uvicorn's supervisor did: SIGINT/SIGTERM stop the workers (SIGTERM: a
graceful stop) and then itself; SIGHUP replaces every worker; SIGTTIN/SIGTTOU add or
remove one; a worker that dies is replaced, unless it failed to start (exit status 3:
the config or the app is broken and would fail again), which stops the gateway.
"""

from __future__ import annotations

import os
import signal
import sys
import time

# A worker whose app could not start (uvicorn's STARTUP_FAILURE).
STARTUP_FAILURE = 3
# How often the master looks at its workers and the signals it got.
TICK_S = 0.25
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
# `python -S -c BOOT ROOT ARGS...`: ROOT, the folder holding the heliograph package, is
# appended to sys.path (after the standard library: nothing there can shadow os or
# signal), then main() reads ARGS.
BOOT = ("import sys; sys.path.append(sys.argv.pop(1)); "
        "from heliograph.supervisor import main; sys.exit(main())")
USAGE = ("usage: python -S -c BOOT ROOT --fd FD --workers N [--remove-at-exit DIR]..."
         " (heliograph/supervisor.py)")


def exec_supervisor(sock, workers: int, remove_at_exit: list[str]) -> None:
    """Become the supervisor (never returns). Called by `serve` once `sock` (a
    socket.socket: not imported here, nor typing, to keep the master small) is bound."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    sock.set_inheritable(True)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    argv = [sys.executable, "-S", "-c", BOOT, root, "--fd", str(sock.fileno()),
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
    def __init__(self, fd: int, count: int):
        self.fd = fd  # the bound listening socket, inheritable: every worker serves it
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
            os.close(self.watch_write)
            from heliograph.worker import serve

            code = serve(self.fd, os.getppid(), self.watch_read)
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


def parse_args(argv: list[str]) -> tuple[int, int, list[str]]:
    """--fd FD --workers N [--remove-at-exit DIR]... (no argparse: ~0.5 MB RSS)."""
    fd = workers = -1
    remove: list[str] = []
    if len(argv) % 2:
        raise SystemExit(USAGE)
    for flag, value in zip(argv[::2], argv[1::2]):
        if flag == "--fd" and value.isdigit():
            fd = int(value)
        elif flag == "--workers" and value.isdigit():
            workers = int(value)
        elif flag == "--remove-at-exit":
            remove.append(value)
        else:
            raise SystemExit(USAGE)
    if fd < 0 or workers < 1:
        raise SystemExit(USAGE)
    return fd, workers, remove


def main(argv: list[str] | None = None) -> int:
    fd, workers, remove_at_exit = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return Supervisor(fd, workers).run()
    finally:
        if remove_at_exit:
            import shutil

            for path in remove_at_exit:
                shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
