"""Reads and writes addressed to a record that may still be on its way to the database.

A record is in the journal when its answer's last byte is sent, and in the database a few
hundred milliseconds later (store/journal.py). Feedback or a score posted right after the
answer, or GET /api/v1/requests/{id}, must not 404 in between: a miss is retried while
this machine's journal still holds records not yet inserted, for at most WAIT_S. A miss
with an empty journal (or an id that is not a UUID, which no record has) answers at once.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from heliograph.store.journal import SEGMENT_SUFFIX

T = TypeVar("T")

# Longer than the journal's usual delay (~0.3 s) with room for a busy writer; a caller
# asking about an id that does not exist waits this long only while records are flowing.
WAIT_S = 5.0


def journal_holds_records(directory: Path) -> bool:
    """Whether any segment in the journal folder has records not yet inserted."""
    try:
        with os.scandir(directory) as entries:
            return any(entry.name.endswith(SEGMENT_SUFFIX) and entry.stat().st_size > 0
                       for entry in entries)
    except OSError:
        return False


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def once_stored(journal_dir: Path, request_id: str,
                      attempt: Callable[[], Awaitable[T]]) -> T:
    """attempt() until it returns something truthy, while the record may be in transit."""
    result = await attempt()
    if result or not _is_uuid(request_id):
        return result
    deadline = time.monotonic() + WAIT_S
    delay = 0.02
    while time.monotonic() < deadline:
        in_transit = journal_holds_records(journal_dir)
        if in_transit:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        result = await attempt()  # once more after the journal emptied: it may be in now
        if result or not in_transit:
            return result
    return result
