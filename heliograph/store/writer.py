"""The writer: moves closed journal segments into the store in batches.

It runs in the background host (heliograph/background/, the journal-writer job), its own
process, so inserts never hold a worker's GIL. Each pass claims every segment no live
process holds, inserts its records and deletes it. When the database is down it keeps
the segments (the host retries with backoff); nothing is dropped.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from heliograph.store.journal import BodyJSON, claim_segment, closed_segments, waiting

log = logging.getLogger("heliograph.writer")

# Records per transaction at most, unless the store says otherwise (Store.writer_batch:
# PostgreSQL takes larger ones). Batches fill up only when that many records wait, i.e.
# when the writer is near its limit.
BATCH = 2000
# Batches in flight at once, unless the store says otherwise (Store.writer_pipeline:
# PostgreSQL takes 2). Each goes in its own thread and transaction, so one batch's Python
# work (rows, rollup deltas, COPY encoding) runs while the server ingests another's.
PIPELINE = 1
# Segments held (claimed, their records in the batch being built) at most: each holds a
# file descriptor until its records are in.
MAX_HELD_SEGMENTS = 64
# Records waiting in the journal past this many bytes (about 20 s of a busy gateway's
# traffic) mean the database does not keep up: say so, at most once a minute. The backlog
# itself is on /metrics (heliograph_journal_bytes, heliograph_journal_writer_lag_seconds).
BACKLOG_WARNING_BYTES = 64 * 1024 * 1024
BACKLOG_WARNING_EVERY_S = 60.0


class InsertPipeline:
    """Batches handed to `insert` (which returns how many records it took) by up to
    `depth` threads at once, their results counted in submission order: `done` is the
    number of records of the batches committed so far that have no earlier batch still
    in flight, so whoever deletes journal segments after `done` records never deletes one
    whose records are not all committed, whatever order the transactions end in.

    Two transactions in flight are safe together: each takes its records' ids before any
    rollup row, and rollup rows in one global order (tables in a fixed order, keys
    sorted), so one waits for the other (the same hour's counters) but they cannot wait
    for each other. After a failure (or a crash) a later batch may be committed while an
    earlier one is not: both keep their segments, and the replay skips what is stored."""

    def __init__(self, insert: Callable[[list[dict]], int], depth: int = 1):
        self._insert = insert
        self.depth = max(1, depth)
        self._threads = (ThreadPoolExecutor(self.depth, thread_name_prefix="heliograph-writer")
                         if self.depth > 1 else None)
        self._in_flight: deque[Future[int]] = deque()
        self.done = 0

    def submit(self, records: list[dict]) -> None:
        """Start inserting `records`; waits first while `depth` batches are in flight.
        Raises the error of a batch that failed (the others are let finish first)."""
        if not records:
            return
        if self._threads is None:
            self.done += self._insert(records)
            return
        while len(self._in_flight) >= self.depth:
            self._collect()
        self._in_flight.append(self._threads.submit(self._insert, records))

    def wait(self) -> None:
        """Until every batch is in; raises as submit does."""
        while self._in_flight:
            self._collect()

    def settle(self) -> None:
        """Let every batch in flight end, counting none (after an error elsewhere)."""
        for future in self._in_flight:
            future.exception()
        self._in_flight.clear()

    def _collect(self) -> None:
        oldest = self._in_flight.popleft()
        try:
            self.done += oldest.result()
        except BaseException:
            # Nothing may be writing when the caller decides what to keep; the later
            # batches are not counted (their segments are kept, their records replayed).
            self.settle()
            raise

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)


class SegmentWriter:
    def __init__(self, directory: Path, store,
                 warn_bytes: int = BACKLOG_WARNING_BYTES):
        self.directory = Path(directory)
        self.store = store
        self.warn_bytes = warn_bytes
        self._warned_at = -math.inf
        self._pipeline = InsertPipeline(self._insert,
                                        getattr(store, "writer_pipeline", PIPELINE))

    def drain(self, segments: list[Path] | None = None) -> bool:
        """Insert every claimable segment (`segments`: the closed ones, when the caller
        has just listed them). False when the store refused (retry later).

        Records of several segments share a transaction (up to the store's batch size),
        so its fixed cost is shared by more records when many small segments wait; a
        segment is deleted only once all its records are in. A failure keeps every
        segment not yet done: on the next pass they go in again, the records already
        stored skipped."""
        if segments is None:
            segments = closed_segments(self.directory)
        if not segments:
            return True
        self._check_backlog(segments)
        # No cyclic garbage collection while a pass runs: its records and rows are
        # acyclic (JSON trees, tuples) and freed by reference counts, yet the millions of
        # objects a pass allocates set off collections that walked every live batch
        # (~5% of the writer's CPU, bench/store_writer.py). It runs again after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._drain(segments)
        finally:
            if collecting:
                gc.enable()

    def _drain(self, segments: list[Path]) -> bool:
        size = getattr(self.store, "writer_batch", BATCH)
        max_bytes = getattr(self.store, "writer_batch_bytes", 0) or math.inf
        # Claimed segments not yet all in, oldest first, each with the number of records
        # of this pass up to and including its own.
        held: deque[tuple[Path, int, int]] = deque()
        batch: list[dict] = []
        pipeline = self._pipeline
        pipeline.done = taken = 0
        batch_bytes = 0  # of the segments whose records wait in `batch`
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
                    pipeline.submit(batch[:size])
                    del batch[:size]
                    if not batch:
                        batch_bytes = 0
                    self._release(held, pipeline.done)
                    if len(held) >= MAX_HELD_SEGMENTS:   # batches in flight hold them
                        pipeline.wait()
                        self._release(held, pipeline.done)
            pipeline.submit(batch)
            pipeline.wait()
            self._release(held, pipeline.done)
        except Exception:  # the database is down or refused: keep the segments
            pipeline.settle()
            try:   # what the batches before the failed one committed can go
                self._release(held, pipeline.done)
            except OSError:
                pass
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

    def close(self) -> None:
        self._pipeline.close()

    def _check_backlog(self, segments: list[Path]) -> None:
        backlog = waiting(segments).size
        now = time.monotonic()
        if backlog > self.warn_bytes and now - self._warned_at >= BACKLOG_WARNING_EVERY_S:
            self._warned_at = now
            log.warning("the journal holds %.0f MB of records (%d segments) not yet in the "
                        "database: the writer is falling behind", backlog / 1e6,
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
    them) replaced. Objects and lists go into JSON text, where both are written escaped.
    A journaled body whose bytes are not UTF-8 (a damaged segment: the journal writes
    none) keeps what is, with U+FFFD for the rest."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if type(value) is BodyJSON:
        return BodyJSON(value.raw.decode(errors="replace").encode())
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
