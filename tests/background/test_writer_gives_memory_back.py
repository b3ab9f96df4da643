"""The journal writer gives its memory back once it has been idle a while: SQLite's page
cache (what SQLite itself says it holds, sqlite3_memory_used, on a real file after real
inserts) and the heap's free pages (the process's RSS). Not while segments keep coming,
and again after the next busy spell."""

import ctypes
import os
import sqlite3  # noqa: F401  (loads libsqlite3)
import uuid
from pathlib import Path

import pytest

from heliograph.background.jobs import JobContext
from heliograph.background.journal_writer import JournalWriterJob
from heliograph.background.memory import trim_heap
from heliograph.store.journal import Journal, closed_segments

MB = 1024 * 1024


def sqlite_memory_used() -> int:
    """Bytes SQLite has allocated in this process (every connection's caches)."""
    # The very library the sqlite3 module loaded (dlopen of a loaded file: same copy).
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libsqlite3" in line}
    if not paths:
        pytest.skip("sqlite3 is linked statically: no libsqlite3 to ask")
    used = ctypes.CDLL(paths.pop()).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return used()


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_segment(journal_dir: Path, records: int) -> None:
    journal = Journal(journal_dir)
    for _ in range(records):
        journal.append({"id": str(uuid.uuid4()), "created_at": "2024-03-04T10:00:00.000000Z",
                        "organization": "org1", "model": "gpt-4o-mini",
                        "request": {"messages": [{"role": "user", "content": "x" * 2000}]}})
    journal.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_writer_empties_its_page_cache_after_an_idle_spell(tmp_path, monkeypatch):
    monkeypatch.setenv("HELIOGRAPH_CONFIG", str(tmp_path / "absent.toml"))
    ctx = JobContext(tmp_path / "journal", f"sqlite:///{tmp_path / 'heliograph.db'}")
    job = JournalWriterJob(ctx)
    job.clock = clock = Clock()
    idle = job.release_after_idle_s

    write_segment(ctx.journal_dir, 3000)   # ~7 MB of bodies through the page cache
    before = sqlite_memory_used()
    assert job.run_once() is True
    assert closed_segments(ctx.journal_dir) == []
    filled = sqlite_memory_used()
    assert filled - before > 4 * MB, (before, filled)

    clock.now += idle / 2          # idle, not long enough: the cache stays
    assert job.run_once() is True
    assert sqlite_memory_used() >= filled - MB

    clock.now += idle / 2          # idle long enough: given back
    assert job.run_once() is True
    released = sqlite_memory_used()
    assert filled - released > 4 * MB, (filled, released)

    write_segment(ctx.journal_dir, 3000)   # busy again: the cache fills again ...
    clock.now += idle
    assert job.run_once() is True
    refilled = sqlite_memory_used()
    assert refilled - released > 4 * MB
    clock.now += idle              # ... and is given back again after the next spell
    assert job.run_once() is True
    assert refilled - sqlite_memory_used() > 4 * MB
    job.close()


def test_trim_heap_hands_freed_pages_back_to_the_system():
    # 64 MB in 4 KB blocks (malloc's heap, not mmap), then one block allocated after them
    # that stays: glibc's free() only trims the heap's top, which that block pins.
    blocks = [bytes(4096) for _ in range(16384)]
    pin = bytes(4096)
    blocks.clear()
    held = rss()
    assert trim_heap() is True
    assert held - rss() > 32 * MB
    del pin
