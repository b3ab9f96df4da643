"""Handing freed memory back to the operating system.

Memory a process frees (SQLite's page cache after PRAGMA shrink_memory, a drained
backlog's parsed records) goes back to glibc's heap, not to the system: the process's RSS
stays where its peak left it until malloc_trim gives back the free pages. Only the
background host calls this, after its journal writer has been idle a while.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        # The symbols already loaded into the process, the C library's among them.
        trim = ctypes.CDLL(None).malloc_trim   # glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def trim_heap() -> bool:
    """Give the heap's free pages back to the system. False where there is no glibc."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
