"""The writer: moves closed journal segments into the store in batches.

It runs in the background host (heliograph/background/, the journal-writer job), its own
process, so inserts never hold a worker's GIL. Each pass claims every segment no live
process holds, inserts its records and deletes it. When the database is down it keeps
the segments (the host retries with backoff); nothing is dropped.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from pathlib import Path

from heliograph.store.journal import claim_segment, closed_segments

log = logging.getLogger("heliograph.writer")

# Records per transaction at most, unless the store says otherwise (Store.writer_batch:
# PostgreSQL takes larger ones). Batches fill up only when that many records wait, i.e.
# when the writer is near its limit.
BATCH = 2000
# Segments held (claimed, their records in the batch being built) at most: each holds a
# file descriptor until its records are in.
MAX_HELD_SEGMENTS = 64
# Records waiting in the journal past this many bytes (about 20 s of a busy gateway's
# traffic) mean the database does not keep up: say so, at most once a minute. The backlog
# itself is on /metrics (heliograph_journal_bytes, heliograph_journal_writer_lag_seconds).
BACKLOG_WARNING_BYTES = 64 * 1024 * 1024
BACKLOG_WARNING_EVERY_S = 60.0


def backlog_bytes(segments: list[Path]) -> int:
    total = 0
    for path in segments:
        try:
            total += path.stat().st_size
        except OSError:  # taken by another writer meanwhile
            pass
    return total


class SegmentWriter:
    def __init__(self, directory: Path, store,
                 warn_bytes: int = BACKLOG_WARNING_BYTES):
        self.directory = Path(directory)
        self.store = store
        self.warn_bytes = warn_bytes
        self._warned_at = -math.inf

    def drain(self) -> bool:
        """Insert every claimable segment. False when the store refused (retry later).

        Records of several segments share a transaction (up to the store's batch size),
        so its fixed cost is shared by more records when many small segments wait; a
        segment is deleted only once all its records are in. A failure keeps every
        segment not yet done: on the next pass they go in again, the records already
        stored skipped."""
        segments = closed_segments(self.directory)
        self._check_backlog(segments)
        size = getattr(self.store, "writer_batch", BATCH)
        max_bytes = getattr(self.store, "writer_batch_bytes", 0) or math.inf
        # Claimed segments not yet all in, oldest first, each with the number of records
        # of this pass up to and including its own.
        held: deque[tuple[Path, int, int]] = deque()
        batch: list[dict] = []
        batch_bytes = 0  # of the segments whose records wait in `batch`
        taken = inserted = 0
        try:
            for path in segments:
                claimed = claim_segment(path)
                if claimed is None:
                    continue
                fd, records = claimed
                batch.extend(records)
                batch_bytes += os.fstat(fd).st_size
                taken += len(records)
                held.append((path, fd, taken))
                while batch and (len(batch) >= size or batch_bytes >= max_bytes
                                 or len(held) >= MAX_HELD_SEGMENTS):
                    inserted += self._insert(batch[:size])
                    del batch[:size]
                    if not batch:
                        batch_bytes = 0
                    self._release(held, inserted)
            inserted += self._insert(batch)
            self._release(held, inserted)
        except Exception:  # the database is down or refused: keep the segments
            log.exception("writing journaled records failed (%d segments kept); will retry",
                          len(held))
            return False
        finally:
            for _path, fd, _end in held:
                os.close(fd)
        return True

    @staticmethod
    def _release(held: deque[tuple[Path, int, int]], inserted: int) -> None:
        """Delete the segments whose records are all in the database, and let them go."""
        while held and held[0][2] <= inserted:
            path, fd, _end = held.popleft()
            path.unlink(missing_ok=True)
            os.close(fd)

    def _check_backlog(self, segments: list[Path]) -> None:
        waiting = backlog_bytes(segments)
        now = time.monotonic()
        if waiting > self.warn_bytes and now - self._warned_at >= BACKLOG_WARNING_EVERY_S:
            self._warned_at = now
            log.warning("the journal holds %.0f MB of records (%d segments) not yet in the "
                        "database: the writer is falling behind", waiting / 1e6,
                        len(segments))

    def _insert(self, records: list[dict]) -> int:
        """Insert the records (salvaging what the store refuses as data); how many."""
        if not records:
            return 0
        data_errors = self.store.data_errors
        try:
            self.store.insert_records(records)
            return len(records)
        except data_errors:
            pass
        # A record the store rejects as data (not an outage): the others go in one by
        # one, and the bad one as well as it can rather than blocking the journal.
        for record in records:
            try:
                self.store.insert_records([record])
            except data_errors as exc:
                self._insert_salvaged(record, exc)
        return len(records)

    def _insert_salvaged(self, record: dict, exc: Exception) -> None:
        log.warning("record %s stored without the values the store refused: %s",
                    record.get("id"), exc)
        try:
            self.store.insert_records([salvaged(record, exc)])
        except self.store.data_errors:
            log.exception("dropping a record the store cannot accept: %r",
                          {k: record.get(k) for k in ("id", "created_at", "path")})


_INT64_MAX = 2**63 - 1


def _storable(value):
    """A record's top-level value as a column takes it: a number that does not fit a
    64-bit column (or is not finite) nulled, NUL characters (PostgreSQL text refuses
    them) replaced. Objects and lists go into JSON text, where both are written escaped."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_INT64_MAX <= value <= _INT64_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def salvaged(record: dict, exc: Exception) -> dict:
    """The record with the values a store refuses made storable, saying so in its error
    (record ids and times are ours: they always survive)."""
    out = {key: _storable(value) for key, value in record.items()}
    note = f"[some values could not be stored: {exc}]"
    out["error"] = f"{record['error']} {note}" if record.get("error") else note
    return out
