"""A durable, append-only buffer between the request path and the database.

The proxy appends each finished record here with one write() to a segment file and
returns; it never waits on the database. The bytes are then in the kernel's page cache,
so a SIGKILL of the gateway cannot lose them. A separate writer process (writer.py)
inserts closed segments into the store in batches and deletes them — a separate process
so that database work never competes with the event loop for the GIL.

Each open segment is held under an exclusive flock by the worker writing it. A segment
nobody holds is closed (rotated, or left by a dead process): any writer may claim it.
Inserts are idempotent on the record id, so a replay that races another is harmless.

A full or failing disk (ENOSPC, EIO, ...) puts the journal in a failed state instead of
raising into an answer: the record that could not be written is kept in memory (a bounded
backlog), `failure` says why, and the pipeline refuses new requests with a 507 before
any provider is called. The journal watches free space itself (statvfs, a few times a
second from rotate()) so it fails before a write does, and recovers without a restart
once space is back: the backlog is written and requests are accepted again.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from heliograph import deep_json

SEGMENT_SUFFIX = ".jsonl"
# A segment is created under this suffix, locked, and only then renamed to SEGMENT_SUFFIX,
# so a writer can never claim a fresh segment in the instant before its owner locks it.
OPENING_SUFFIX = ".opening"

log = logging.getLogger("heliograph.journal")

# Below this much free space the journal stops accepting requests: room for the records
# of requests already under way, whose providers are being paid.
MIN_FREE_BYTES = 4 * 1024 * 1024
# Records kept in memory while the disk refuses them, written once it takes them again.
MAX_BACKLOG = 10_000
# How often a failed journal tries the disk again.
PROBE_EVERY_S = 0.5


class Journal:
    def __init__(self, directory: str | os.PathLike, min_free_bytes: int = MIN_FREE_BYTES):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.min_free_bytes = min_free_bytes
        self._counter = itertools.count()
        self._fd = -1
        self._path: Path  # the open segment's: set with _fd by _open_segment, below
        self._pending = 0
        self._size = 0  # bytes of whole records in the open segment
        # Why the journal cannot write now (None: it can). Read on every request.
        self.failure: str | None = None
        self._backlog: deque[bytes] = deque()
        self._dropped = 0
        self._next_probe = 0.0
        # The next segment, created ahead of time off the event loop (prepare_spare), so
        # that rotate() only swaps descriptors: creating one (open, flock, rename) took
        # ~0.2 ms of the loop five times a second, and more when the disk was busy with
        # the writer's commits. The lock guards the hand-over between the two threads.
        self._spare: tuple[int, Path] | None = None
        self._spare_lock = threading.Lock()
        self._open_segment()

    def _new_segment(self) -> tuple[int, Path]:
        name = f"{os.getpid()}-{time.time_ns()}-{next(self._counter)}"
        opening = self.directory / (name + OPENING_SUFFIX)
        fd = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = self.directory / (name + SEGMENT_SUFFIX)
            os.rename(opening, path)
        except OSError:
            os.close(fd)
            raise
        return fd, path

    def _open_segment(self) -> None:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        fd, path = spare if spare is not None else self._new_segment()
        self._fd, self._path, self._pending, self._size = fd, path, 0, 0

    def prepare_spare(self) -> None:
        """Create the segment the next rotate() will switch to. Blocking file-system
        calls: run it on a thread of its own, never on the event loop. Harmless if it
        races a rotation or the journal's close (the extra segment is removed)."""
        if self._spare is not None or self.failure is not None:
            return
        try:
            made = self._new_segment()
        except OSError:
            return  # rotate() creates its segment itself, and reports the failure
        with self._spare_lock:
            used = self._spare is None and self._fd >= 0
            if used:
                self._spare = made
        if not used:  # not needed after all
            _discard(*made)

    def append(self, record: Mapping[str, Any]) -> bool:
        """Called on the event loop for every request: one syscall, no waiting. Never
        raises for a disk error (the answer must still end cleanly): False when the
        record could only be kept in memory, see `failure`."""
        line = encode_line(record)
        if self.failure is None:
            try:
                self._write_line(line)
                return True
            except OSError as exc:
                self._fail(exc)
        self._keep(line)
        return False

    def _write_line(self, line: bytes) -> None:
        """Write one whole line. A short write (the disk filled mid-line) is continued;
        if the rest cannot be written the partial line is cut off again, so the next
        record never glues onto a torn one."""
        written = 0
        try:
            written = os.write(self._fd, line)  # all of it, but on a disk filling up
            if written < len(line):
                view = memoryview(line)
                while written < len(line):
                    written += os.write(self._fd, view[written:])
        except OSError:
            if written:
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    pass  # the reader skips a torn line; the next one starts a new line
            raise
        self._size += written
        self._pending += 1

    def _keep(self, line: bytes) -> None:
        if len(self._backlog) < MAX_BACKLOG:
            self._backlog.append(line)
        else:
            self._dropped += 1
            if self._dropped == 1:  # once per outage; the recovery line gives the count
                log.error("journal backlog full (%d records): further records are lost "
                          "until the disk takes writes again", MAX_BACKLOG)

    def _fail(self, exc: OSError | str) -> None:
        reason = exc if isinstance(exc, str) else (
            f"cannot write the journal in {self.directory}: "
            f"{errno.errorcode.get(exc.errno or 0, 'error')} ({exc.strerror or exc})")
        if self.failure is None:
            log.error("%s; refusing requests (507) until it can write again", reason)
        self.failure = reason
        self._next_probe = time.monotonic() + PROBE_EVERY_S

    def available(self) -> bool:
        """Whether a request may be accepted. Cheap while healthy (one attribute read);
        while failed, tries the disk again at most every PROBE_EVERY_S."""
        if self.failure is None:
            return True
        if time.monotonic() >= self._next_probe:
            self.check()
        return self.failure is None

    def check(self) -> str | None:
        """Look at free space, recover (writing the backlog) when it is back; the
        failure reason, or None when the journal can write."""
        try:
            st = os.statvfs(self.directory)
        except OSError as exc:
            self._fail(exc)
            return self.failure
        free = st.f_bavail * st.f_frsize
        if free < self.min_free_bytes:
            self._fail(f"journal disk nearly full: {free} bytes free in {self.directory}"
                       f" (needs {self.min_free_bytes})")
            return self.failure
        if self.failure is not None:
            kept = len(self._backlog)
            try:
                self._flush_backlog()
            except OSError as exc:
                self._fail(exc)
                return self.failure
            log.warning("journal writable again; %d records kept in memory were written"
                        "%s", kept, f", {self._dropped} lost" if self._dropped else "")
            self.failure, self._dropped = None, 0
        return None

    def _flush_backlog(self) -> None:
        while self._backlog:
            self._write_line(self._backlog[0])
            self._backlog.popleft()

    def rotate(self) -> bool:
        """Close the current segment (handing it to the writer) if it holds anything.
        Called a few times a second, so it also watches the disk."""
        self.check()
        if not self._pending:
            return False
        old_fd = self._fd
        try:
            self._open_segment()
        except OSError as exc:  # no room for a new file: keep appending to this one
            self._fail(exc)
            return False
        os.close(old_fd)  # releases the lock: the segment is now the writer's
        return True

    def close(self) -> None:
        """Hand over the last segment; remove it instead when it is empty."""
        if self._fd < 0:
            return
        if self._backlog:  # a last chance for records kept in memory, whatever is free
            try:
                self._flush_backlog()
            except OSError as exc:
                log.error("shutting down with %d journal records that could not be "
                          "written: they are lost (%s)", len(self._backlog), exc)
        if not self._pending:
            os.unlink(self._path)
        with self._spare_lock:
            os.close(self._fd)
            self._fd = -1
            spare, self._spare = self._spare, None
        if spare is not None:
            _discard(*spare)


def _discard(fd: int, path: Path) -> None:
    """Remove an empty segment of ours that will not be used."""
    try:
        os.unlink(path)
    except OSError:
        pass  # left empty: the writer claims and deletes it once our lock is gone
    os.close(fd)


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
    try:
        for line in _lines(data):
            try:
                records.append(decode_line(line))
            except orjson.JSONDecodeError:
                continue
    except UnknownLayout as exc:
        # Left as it is (not a torn line: a newer version's), for a writer that reads it.
        if path not in _REPORTED:
            _REPORTED.add(path)
            log.error("journal segment %s left in place: %s", path, exc)
        os.close(fd)
        return None
    return fd, records


def _lines(data: bytes) -> Iterator[bytes]:
    """The non-empty lines of a segment. Found with bytes.find (memchr) rather than
    data.split, whose byte-by-byte loop cost ~1.9 against ~1.1 µs a 2.3 KB record."""
    find, start, end = data.find, 0, len(data)
    while start < end:
        stop = find(b"\n", start)
        if stop < 0:
            stop = end
        if stop > start:
            yield data[start:stop]
        start = stop + 1


# Segments left for a newer version, reported once each.
_REPORTED: set[Path] = set()


def left_in_place(path: Path) -> bool:
    """Whether this process's writer left the segment for a newer version's."""
    return path in _REPORTED


# A record's line, since session 9: its values in a fixed order (a layout), in a JSON
# array whose first item names the layout, with the bodies last, each between tabs:
#   [1,"<id>","<created_at>",…,<TAB>{request}<TAB>,<TAB>{response}<TAB>]
# The writer then neither reads nor compares 38 keys a record: the array is decoded and
# zipped with the layout's keys (the module's own string objects, so every rec.get() of
# the writer finds its key by identity), ~100k instructions a record less than the
# object below (bench/README.md "Positional journal lines").
# Before, and still for a record whose keys are not exactly a layout's: the record's JSON
# object with the bodies last, each between tabs:
#   {"id":…,"request":<TAB>{…}<TAB>,"response":<TAB>{…}<TAB>}
# Either is one JSON value any reader takes (a tab is whitespace between tokens), while
# orjson never writes a raw tab (inside a string it is the escape \t), so the writer finds
# each body's JSON text by splitting at the tabs and stores it as written: decoding the
# bodies and encoding them again were ~25 µs of the writer's CPU per record
# (bench/README.md "Writer throughput"). A line without tabs (written before) is read whole.
_REQUEST_KEY = b'"request":'
_RESPONSE_KEY = b',"response":'
_COMMA, _BRACE, _OPEN, _CLOSE = ord(","), ord("}"), ord("["), ord("]")

# Layouts of positional lines, by the number in the line's first item. A layout is never
# changed once released: segments written with it may wait on disk across an upgrade.
# A record key added later goes into a new layout (a new number); until then a record
# with it is written as an object, which every writer reads.
LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("id", "created_at", "organization", "key_id", "model", "model_used", "provider",
        "path", "status", "error", "latency_ms", "ttft_ms", "prompt_tokens",
        "completion_tokens", "total_tokens", "cached_tokens", "cache_write_tokens",
        "reasoning_tokens", "cost_usd", "cost_known", "cost_saved_usd", "user_id",
        "properties", "session_id", "session_path", "session_name", "cache",
        "cache_entry", "cache_reference_id", "attempts", "fallback_index", "ratelimit",
        "feedback", "scores", "trace", "requested_id", "prompt_id", "model_override"),
}
LAYOUT = 1   # what encode_line writes
# Each layout's record keys (its own key objects) and the bodies', every value None.
_RECORDS: dict[int, dict[str, Any]] = {
    number: dict.fromkeys((*keys, "request", "response"))
    for number, keys in LAYOUTS.items()}
_LAYOUT_SIZE = len(LAYOUTS[LAYOUT]) + 2   # and the two bodies
# A record's values in the layout's order, a tuple made in one C call (the worker runs
# this for every request).
_layout_values = itemgetter(*LAYOUTS[LAYOUT])
_LAYOUT_OPEN = b"[%d," % LAYOUT


class UnknownLayout(ValueError):
    """A positional line whose layout this version does not know."""


class BodyJSON:
    """A body's JSON as the journal holds it, its UTF-8 bytes (store/_schema.body_row
    stores it as is). Not a str, so nothing mistakes it for a string value to encode.
    Kept as bytes: PostgreSQL's COPY sends these very bytes, so a str in between was a
    decode here and an encode back in psycopg (the encoding alone ~6,000 instructions a
    record: about half the bodies hold a character beyond Latin-1); SQLite binds `text`."""
    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        self.raw = raw

    @property
    def text(self) -> str:
        return self.raw.decode()

    def __repr__(self) -> str:
        return f"BodyJSON({self.raw[:60]!r})"


def encode_line(record: Mapping[str, Any]) -> bytes:
    if len(record) == _LAYOUT_SIZE:
        try:
            values = _layout_values(record)
            request, response = record["request"], record["response"]
        except KeyError:   # as many keys, other ones: written as an object
            pass
        else:
            # The layout's number put before the values' array: `[v,…]` → `[1,v,…,`.
            head = deep_json.dumps(values)
            return b"".join((_LAYOUT_OPEN, head[1:-1], b",\t", deep_json.dumps(request),
                             b"\t,\t", deep_json.dumps(response), b"\t]\n"))
    if "request" not in record or "response" not in record:
        return deep_json.dumps(record, orjson.OPT_APPEND_NEWLINE)
    rest = dict(record)
    request, response = rest.pop("request"), rest.pop("response")
    head = deep_json.dumps(rest)
    return b"".join((head[:-1], b"," if len(head) > 2 else b"", _REQUEST_KEY, b"\t",
                     deep_json.dumps(request), b"\t", _RESPONSE_KEY, b"\t",
                     deep_json.dumps(response), b"\t}\n"))


def _whole(line: bytes) -> dict:
    """A line read as plain JSON: an older journal's, or one whose tabs are elsewhere.
    Anything but an object is no record this version can read (UnknownLayout: its
    segment is kept); a torn line raises orjson.JSONDecodeError (it is skipped)."""
    value = orjson.loads(line)
    if type(value) is not dict:
        raise UnknownLayout(f"a journal line that is no record: {line[:40]!r}")
    return value


def decode_line(line: bytes) -> dict:
    """A journal line's record; its bodies as BodyJSON (None for null) when the line has
    them apart. Raises orjson.JSONDecodeError for a line that is not a whole record (a
    torn last line)."""
    # The four tabs found in place rather than split into five copies of the line.
    first = line.find(b"\t")
    second = line.find(b"\t", first + 1)
    third = line.find(b"\t", second + 1)
    fourth = line.find(b"\t", third + 1)
    if (first < 2 or fourth != len(line) - 2 or b"\x00" in line):
        return _whole(line)
    if line[0] == _OPEN:   # a positional line
        if (line[-1] != _CLOSE or line[first - 1] != _COMMA or third != second + 2
                or line[second + 1] != _COMMA):
            return _whole(line)
        values = orjson.loads(line[:first - 1] + b"]")
        keys = LAYOUTS.get(values[0]) if type(values[0]) is int else None
        if keys is None or len(values) != len(keys) + 1:
            # Written by another version (a downgrade): not a torn line to skip. The
            # segment stays in the journal, for a writer that knows the layout.
            raise UnknownLayout(f"a journal line of an unknown layout: {line[:40]!r}")
        # A copy of the layout's dict of keys, its values then set in place: dict(zip())
        # grew a new dict three times on the way to 40 keys.
        record = _RECORDS[values[0]].copy()
        record.update(zip(keys, values[1:]))
    else:
        if (first < len(_REQUEST_KEY) or line[-1] != _BRACE
                or not line.startswith(_REQUEST_KEY, first - len(_REQUEST_KEY))
                or third != second + 1 + len(_RESPONSE_KEY)
                or not line.startswith(_RESPONSE_KEY, second + 1)):
            return _whole(line)
        head_end = first - len(_REQUEST_KEY)   # where "request" starts, after a comma if any
        record = orjson.loads(line[:head_end - 1] + b"}" if line[head_end - 1] == _COMMA
                              else line[:head_end] + b"}")
    request, response = line[first + 1:second], line[third + 1:fourth]
    record["request"] = None if request == b"null" else BodyJSON(request)
    record["response"] = None if response == b"null" else BodyJSON(response)
    return record


def closed_segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SEGMENT_SUFFIX))


class Waiting(NamedTuple):
    """What waits in the journal for the writer."""
    segments: int           # holding records
    size: int               # their bytes
    oldest: float | None    # the oldest one's mtime (None: nothing waits)


def waiting(segments: Iterable[Path]) -> Waiting:
    """What waits in these segments (closed_segments' paths, or some of them). A worker's
    idle open segment is empty: nothing waits in it."""
    count = size = 0
    oldest: float | None = None
    for path in segments:
        try:
            stat = path.stat()
        except OSError:   # taken and deleted by the writer meanwhile
            continue
        if stat.st_size:
            count += 1
            size += stat.st_size
            oldest = stat.st_mtime if oldest is None else min(oldest, stat.st_mtime)
    return Waiting(count, size, oldest)
