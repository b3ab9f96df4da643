"""The per-gateway folder of prometheus-client's multiprocess files, prepared by `serve`.

Apart from heliograph/prometheus.py so the serve master never imports prometheus_client:
it decides at import time whether values go to multiprocess files (PROMETHEUS_MULTIPROC_DIR
set) or stay in the process, and forked workers inherit the master's modules, so an import
before the variable is set would leave every worker counting on its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import MutableMapping
from pathlib import Path

from heliograph.background.host import process_alive
from heliograph.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "metrics-"


def prepare_multiprocess_dir(settings: Settings, environ: MutableMapping[str, str] | None = None,
                             ) -> Path | None:
    """Create this gateway's empty multiprocess folder and point the workers at it; remove
    folders left by gateways that are gone. None when metrics are disabled."""
    env = os.environ if environ is None else environ
    if not settings.metrics_enabled:
        return None
    journal = settings.resolved_journal_dir().resolve()
    journal.mkdir(parents=True, exist_ok=True)
    for old in journal.glob(DIR_PREFIX + "*"):
        pid = old.name[len(DIR_PREFIX):]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = journal / f"{DIR_PREFIX}{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    env[MULTIPROC_ENV] = str(folder)
    atexit.register(shutil.rmtree, folder, True)
    return folder
