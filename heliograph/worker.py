"""A serve worker, forked by heliograph/supervisor.py's master, which runs without `site`
(`python -S`). serve() first does what the interpreter's start skipped there
(site.main(): the site-packages on sys.path, their `.pth` files, sitecustomize), then
serves the inherited listening socket with the settings `serve` exported (server.py
serve_worker) until SIGTERM; 3 when the app could not start (the master then stops the
gateway). watch_fd is the read end of a pipe only the master writes to: it reads as
end-of-file once the master is gone (background/supervisor.py exit_with_master)."""

from __future__ import annotations

import sys


def serve(fd: int, master_pid: int, watch_fd: int) -> int:
    if sys.flags.no_site:
        import site

        site.main()
    # `import uvicorn` loads watchfiles and anyio for its --reload supervisor, which a
    # worker never runs: ~1 MB RSS per worker. Marked missing, uvicorn falls back to its
    # stat-based reloader class, never used.
    sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
    import socket

    from heliograph.server import serve_worker

    return serve_worker(socket.socket(fileno=fd), master_pid, watch_fd)
