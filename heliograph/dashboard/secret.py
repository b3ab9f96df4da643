"""The dashboard's signing secret, resolved by every worker at startup (dashboard/__init__.py).

Apart from session.py so a worker that never serves a page does not load itsdangerous
(the signing itself, in session.py, comes with the dashboard on its first page).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

SECRET_FILE = "heliograph-dashboard.secret"


def resolve_secret(configured: str, journal_dir: Path) -> str:
    """The signing secret: the configured one, else one generated on first use and kept
    (mode 0600) beside the journal, so every worker of this machine and every restart
    agree. Several replicas behind one URL need [dashboard] session_secret."""
    if configured:
        return configured
    path = journal_dir.resolve().parent / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:  # we won the race to create it: every other worker reads this one
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    for _ in range(50):  # another worker may have created it and not written it yet
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise RuntimeError(f"dashboard session secret file {path} is empty")
