"""prometheus-client's multiprocess files with their disk space taken before it is used.

prometheus-client keeps each process's values in a file it maps into memory, and sizes
that file with truncate(): a sparse file, whose blocks the file system only finds when a
value is first written into the mapping. On a full disk (the folder is inside the journal
folder: heliograph/metrics_dir.py) that write cannot be backed and the kernel kills the
process with SIGBUS, in the middle of whatever request was counting: the stream it was
answering is cut and the worker is gone, with no traceback.

`install()` makes every such file reserve its blocks (posix_fallocate) before they are
mapped, when the file is created and each time it grows. A full disk is then an OSError
where the value is created, which the metrics sink's caller logs (heliograph/sinks), and
the request carries on without that count.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import Any

from prometheus_client import mmap_dict, values

_installed = False

# prometheus-client's multiprocess values ask for the pid on every increment (to notice a
# fork and open the child's own file): a real getpid() system call, ~8 per request, ~3%
# of a worker's CPU (py-spy). The pid is kept here instead and refreshed in a forked
# child, which is the only way it changes.
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def current_pid() -> int:
    return _pid


def _reserve(fd: int, size: int) -> None:
    """Blocks for the first `size` bytes of the file, or OSError (ENOSPC) when the disk has
    none. Where the file system cannot allocate ahead (EOPNOTSUPP, EINVAL) nothing can be
    done: the file stays as prometheus-client makes it."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return
        raise


def _entry_size(key: str) -> int:
    """Bytes prometheus-client's _init_value appends for one key (its own arithmetic)."""
    encoded = key.encode("utf-8")
    padded = len(encoded) + (8 - (len(encoded) + 4) % 8)
    return struct.calcsize(f"i{padded}sdd")


class ReservedMmapedDict(mmap_dict.MmapedDict):
    """MmapedDict whose file's blocks are allocated before any page of it is written."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            created = not os.path.exists(filename)
            with open(filename, "a+b") as fh:
                size = os.fstat(fh.fileno()).st_size
                try:
                    _reserve(fh.fileno(), max(size, mmap_dict._INITIAL_MMAP_SIZE))
                except OSError:
                    if created and size == 0:
                        # An empty file would break every scrape (it has no header).
                        os.unlink(filename)
                    raise
        super().__init__(filename, read_mode)

    def _init_value(self, key: str) -> None:
        capacity = self._capacity
        while self._used + _entry_size(key) > capacity:
            capacity *= 2
        if capacity > self._capacity:  # the file is about to grow: take the blocks first
            _reserve(self._f.fileno(), capacity)
        super()._init_value(key)


def install() -> None:
    """Make prometheus-client's multiprocess values use ReservedMmapedDict and the kept pid
    (idempotent). values.py looks MmapedDict up by name each time it opens a file, and a
    metric takes values.ValueClass when it is made: this runs before any metric exists
    (heliograph/sinks/metrics.py makes them all), so no file is mapped by two classes."""
    global _installed
    if not _installed:
        values_module: Any = values
        values_module.MmapedDict = ReservedMmapedDict
        if getattr(values.ValueClass, "_multiprocess", False):
            values_module.ValueClass = values.MultiProcessValue(process_identifier=current_pid)
        _installed = True


# Writes the value's double straight into the mapping: no bytes object and no slice in
# between (prometheus-client's own write builds both). Only the value: the timestamp
# after it is 0.0 for a counter's or a histogram's value, written once by adder().
_pack_value_into = struct.Struct("d").pack_into


def adder(value: Any) -> Callable[[float], None]:
    """A function adding to one metric value (a Counter or Histogram child's `_value`,
    `_sum` or bucket), for the metrics sink: it runs for every record, on the event loop
    only. A multiprocess value's own inc takes a lock, asks for the pid, and writes
    through two more Python calls (~4,000 instructions, 6 a record); this one adds and
    writes the 16 bytes at the value's place in its file, which is where they stay (a
    file that grows is mapped again: its mapping is looked up on each write). In a forked
    child (a new pid) the value's own inc takes over for good: it moves the process's
    values to files of its own. In-process values (no multiprocess folder) keep their inc.
    """
    if not getattr(value, "_multiprocess", False):
        return value.inc
    owner = _pid
    file, key = value._file, value._key
    # Makes sure it has a place, and a 0.0 timestamp (what inc keeps): each add then
    # writes the value's 8 bytes only.
    value._timestamp = 0.0
    file.write_value(key, value._value, 0.0)
    position = file._positions[key]

    def add(amount: float) -> None:
        if _pid != owner:
            value.inc(amount)
            return
        value._value += amount
        _pack_value_into(file._m, position, value._value)

    return add
