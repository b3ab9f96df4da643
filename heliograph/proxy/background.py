"""Fire-and-forget work after the answer (cache writes, rate-limit settlement): started
without awaiting, failures logged and never raised, and waitable at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        # The event loop keeps only weak references to tasks: these keep them alive.
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Run `work` in a task; if it raises, log "<what> failed" with the traceback."""
        task = asyncio.get_running_loop().create_task(self._quietly(work, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, work: Coroutine[Any, Any, object], what: str) -> None:
        try:
            await work
        except Exception:  # noqa: BLE001 - the response is gone; only the log can know
            self._log.exception("%s failed", what)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the tasks in flight, and those they start (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
