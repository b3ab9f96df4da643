"""The background host's threads share one malloc arena (issue 15, session 14).

glibc gives every thread that allocates an arena of its own (up to 8 per core); memory
freed in one is reused only there, so a journal backlog's batches left 7-17 MB of free
fragments across the host's dozen threads at its peak (bench/README.md). The host caps
the arenas at one before its threads start (background/memory.py).

Read from outside, in /proc/<pid>/maps: glibc reserves each arena besides the main one
(the [heap]) as an anonymous 64 MiB region aligned to 64 MiB, its used part readable and
writable, the rest reserved (---p)."""

from __future__ import annotations

import time
from pathlib import Path

from servers import Gateway
from test_host_imports import host_after_logged_calls

ARENA_BYTES = 64 << 20   # glibc's HEAP_MAX_SIZE on 64-bit


def extra_arenas(pid: int) -> int:
    """How many malloc arenas besides the main one the process has reserved."""
    regions = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(address, 16) for address in fields[0].split("-"))
        regions.append((start, end, fields[1], fields[5] if len(fields) > 5 else ""))
    count = 0
    for i, (start, end, perms, path) in enumerate(regions):
        if path or start % ARENA_BYTES or not perms.startswith("rw"):
            continue
        if end < start + ARENA_BYTES and i + 1 < len(regions):
            nxt = regions[i + 1]
            if nxt[0] == end and nxt[2] == "---p" and not nxt[3]:
                end = nxt[1]
        count += end - start == ARENA_BYTES
    return count


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_the_hosts_threads_allocate_from_one_arena(upstream, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'heliograph.db'}")
    try:
        pid = host_after_logged_calls(gw)
        time.sleep(1.5)                              # every job has run a few passes
        assert threads(pid) >= 6                     # a thread per job, besides the main one
        assert extra_arenas(pid) == 0
    finally:
        gw.stop()
