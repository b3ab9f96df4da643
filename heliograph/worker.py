"""A serve worker: `python -m heliograph.worker --fd FD --master-pid PID --watch-fd FD`,
forked and exec'd by heliograph/supervisor.py's master. It serves the inherited listening
socket with the settings `serve` exported (server.py serve_worker) until SIGTERM, and
exits with status 3 when the app could not start (the master then stops the gateway).
--watch-fd is the read end of a pipe only the master writes to: it reads as end-of-file
once the master is gone (background/supervisor.py exit_with_master)."""

from __future__ import annotations

import sys

USAGE = "usage: python -m heliograph.worker --fd FD --master-pid PID --watch-fd FD"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = dict(zip(argv[::2], argv[1::2]))
    if len(argv) % 2 or set(flags) != {"--fd", "--master-pid", "--watch-fd"} or not all(
            value.isdigit() for value in flags.values()):
        raise SystemExit(USAGE)
    # `import uvicorn` loads watchfiles and anyio for its --reload supervisor, which a
    # worker never runs: ~1 MB RSS per worker. Marked missing, uvicorn falls back to its
    # stat-based reloader class, never used.
    sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
    import socket

    from heliograph.server import serve_worker

    sock = socket.socket(fileno=int(flags["--fd"]))
    return serve_worker(sock, int(flags["--master-pid"]), int(flags["--watch-fd"]))


if __name__ == "__main__":
    sys.exit(main())
