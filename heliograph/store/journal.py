"""A durable, append-only buffer between the request path and the database.

The proxy appends each finished record here with one write() to a segment file and
returns; it never waits on the database. The bytes are then in the kernel's page cache,
so a SIGKILL of the gateway cannot lose them. A separate writer process (writer.py)
inserts closed segments into the store in batches and deletes them — a separate process
so that database work never competes with the event loop for the GIL.

Each open segment is held under an exclusive flock by the worker writing it. A segment
nobody holds is closed (rotated, or left by a dead process): any writer may claim it.
Inserts are idempotent on the record id, so a replay that races another is harmless.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from heliograph import deep_json

SEGMENT_SUFFIX = ".jsonl"
# A segment is created under this suffix, locked, and only then renamed to SEGMENT_SUFFIX,
# so a writer can never claim a fresh segment in the instant before its owner locks it.
OPENING_SUFFIX = ".opening"


class Journal:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        self._fd = -1
        self._path: Path | None = None
        self._pending = 0
        self._open_segment()

    def _open_segment(self) -> None:
        name = f"{os.getpid()}-{time.time_ns()}-{next(self._counter)}"
        opening = self.directory / (name + OPENING_SUFFIX)
        fd = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = self.directory / (name + SEGMENT_SUFFIX)
        os.rename(opening, path)
        self._fd, self._path, self._pending = fd, path, 0

    def append(self, record: Mapping[str, Any]) -> None:
        """Called on the event loop for every request: one syscall, no waiting."""
        os.write(self._fd, deep_json.dumps(record, orjson.OPT_APPEND_NEWLINE))
        self._pending += 1

    def rotate(self) -> bool:
        """Close the current segment (handing it to the writer) if it holds anything."""
        if not self._pending:
            return False
        old_fd = self._fd
        self._open_segment()
        os.close(old_fd)  # releases the lock: the segment is now the writer's
        return True

    def close(self) -> None:
        """Hand over the last segment; remove it instead when it is empty."""
        if self._fd < 0:
            return
        if not self._pending:
            os.unlink(self._path)
        os.close(self._fd)
        self._fd = -1


def claim_segment(path: Path) -> tuple[int, list[dict]] | None:
    """Lock and read a closed segment. Returns (fd, records), or None while a live
    process still holds it. A torn last line (killed mid-write) is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not path.exists():  # claimed and finished by another writer meanwhile
        os.close(fd)
        return None
    with os.fdopen(os.dup(fd), "rb") as fh:
        data = fh.read()
    records = []
    for line in data.split(b"\n"):
        if line:
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return fd, records


def closed_segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SEGMENT_SUFFIX))
