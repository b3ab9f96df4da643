"""A gateway worker served in this very process (uvicorn, the worker's app factory) that
writes the names in sys.modules to a file when it gets SIGUSR1: what a worker has loaded
can only be seen from inside, and `heliograph serve` runs its workers as children.

Usage: python module_probe.py PORT OUT_FILE (HELIOGRAPH_CONFIG names the config)."""

import os
import signal
import sys
from pathlib import Path

import uvicorn

from heliograph.config import worker_settings
from heliograph.keys import ensure_admin_key
from heliograph.store import open_store


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])

    def dump(signum, frame) -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text("\n".join(sorted(sys.modules)))
        os.replace(tmp, out)  # the test never reads half a list

    signal.signal(signal.SIGUSR1, dump)
    settings = worker_settings()
    store = open_store(settings.database_url)  # creates the schema, as `serve` does
    ensure_admin_key(store, settings.admin_key)
    store.close()
    uvicorn.run("heliograph.app:create_app", factory=True, host="127.0.0.1", port=port,
                log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
