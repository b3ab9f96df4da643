"""The background host's heap: one malloc arena for all its threads, and freed memory
handed back to the operating system.

glibc gives a thread an arena of its own at its first allocation (up to 8 per core), and
memory freed in one arena is reused only there. The host runs a dozen threads (a job
thread and a nice-19 lane per job, SQLite's checkpoint thread): with an arena each (11
besides the main one, /proc/<pid>/maps), a journal backlog's batches left 7-17 MB of free
fragments spread over them at the host's peak, which the next allocation on another
thread could not use; with one arena 0.3-7 MB. The host peaked 4-7 MB lower draining a
backlog alone, 14-19 MB lower under bench/run.py's load (bench/README.md, session 14).
Its threads mostly wait (a pass at a time per job, each holding the GIL but for SQLite's
calls), so they rarely contend for the arena's lock.

Memory a process frees (SQLite's page cache after PRAGMA shrink_memory, a drained
backlog's parsed records) goes back to glibc's heap, not to the system: the process's RSS
stays where its peak left it until malloc_trim gives back the free pages. Only the
background host calls this, after its journal writer has been idle a while.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any

# mallopt's parameter for the most arenas glibc creates (malloc.h).
_M_ARENA_MAX = -8


def _libc(name: str, argtypes: list) -> Any:
    """The C library's function `name`, or None where it has none (musl: no mallopt
    arena setting, no malloc_trim)."""
    try:
        # The symbols already loaded into the process, the C library's among them.
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    return _libc("mallopt", [ctypes.c_int, ctypes.c_int])


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    return _libc("malloc_trim", [ctypes.c_size_t])


def one_heap_arena() -> bool:
    """Make every thread started from now on allocate from the main arena. Call before
    starting threads: a thread that has an arena keeps it. False where there is no glibc."""
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, 1))


def trim_heap() -> bool:
    """Give the heap's free pages back to the system. False where there is no glibc."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
