"""A durable, append-only buffer between the request path and the database.

The proxy appends each finished record here with one write() to a segment file and
returns; it never waits on the database. The bytes are then in the kernel's page cache,
so a SIGKILL of the gateway cannot lose them. A background thread (writer.py) drains the
in-memory copy into the store in batches and then deletes the segment.

Each live segment is held under an exclusive flock by the process writing it. A segment
nobody holds belongs to a dead process: any worker may replay it (inserts are idempotent
on the record id, so a replay that races a slow owner is harmless).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
from collections import deque
from pathlib import Path

import orjson

SEGMENT_SUFFIX = ".jsonl"


class Segment:
    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.records: list[dict] = []

    def discard(self) -> None:
        """All records are in the store: remove the file, then release it."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)


class Journal:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._wakeup = threading.Event()
        self._segment = self._new_segment()
        self.appended = 0

    def _new_segment(self) -> Segment:
        name = f"{os.getpid()}-{time.time_ns()}-{next(self._counter)}{SEGMENT_SUFFIX}"
        return Segment(self.directory / name)

    def append(self, record: dict) -> None:
        """Called on the event loop for every request; one syscall, no waiting."""
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            os.write(self._segment.fd, line)
            self._segment.records.append(record)
            self.appended += 1
        if len(self._segment.records) >= 500:
            self._wakeup.set()

    def rotate(self) -> Segment | None:
        """Swap in a fresh segment; return the full one (None when it was empty)."""
        with self._lock:
            if not self._segment.records:
                return None
            full, self._segment = self._segment, self._new_segment()
        return full

    def wait(self, timeout: float) -> None:
        self._wakeup.wait(timeout)
        self._wakeup.clear()

    def wake(self) -> None:
        self._wakeup.set()

    def close(self) -> None:
        with self._lock:
            self._segment.discard() if not self._segment.records else os.close(self._segment.fd)

    def orphaned_segments(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*" + SEGMENT_SUFFIX)
                      if p != self._segment.path)


def read_orphan(path: Path) -> tuple[int, list[dict]] | None:
    """Lock and read a segment no live process holds. Returns (fd, records) or None when
    another process owns it. A torn last line (killed mid-write) is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    with os.fdopen(os.dup(fd), "rb") as fh:
        data = fh.read()
    records = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return fd, records
