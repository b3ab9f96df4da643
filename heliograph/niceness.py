"""A thread's own niceness (Linux keeps one per thread, not per process).

Raising a thread's niceness needs no privilege; lowering it back does (CAP_SYS_NICE). So
work that must sometimes run at a thread's full priority keeps a thread that never
lowered it, and hands the work that may wait to a thread that did."""

from __future__ import annotations

import os
import threading


def set_thread_niceness(niceness: int) -> bool:
    """Set the calling thread's niceness; False where that cannot be done (not Linux, or
    lower than the thread's own without the privilege): it runs on as it was."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        return False
    return True


def thread_niceness() -> int:
    """The calling thread's niceness."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
