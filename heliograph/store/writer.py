"""Background thread that moves journaled records into the store in batches."""

from __future__ import annotations

import logging
import os
import threading
import time

from heliograph.store.journal import Journal, Segment, read_orphan

log = logging.getLogger("heliograph.writer")

FLUSH_INTERVAL_S = 0.2
ORPHAN_SCAN_INTERVAL_S = 30.0
RETRY_BACKOFF_S = (0.5, 1, 2, 5, 10)


class JournalWriter:
    def __init__(self, journal: Journal, store):
        self.journal = journal
        self.store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heliograph-writer",
                                        daemon=True)
        # Segments whose insert failed (database down): retried, never dropped.
        self._failed: list[Segment] = []
        self.written = 0
        self._last_orphan_scan = 0.0

    def start(self) -> None:
        self.replay_orphans()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.journal.wake()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self.journal.wait(FLUSH_INTERVAL_S)
            segment = self.journal.rotate()
            if segment is not None:
                self._failed.append(segment)
            if self._flush_failed():
                failures = 0
            else:
                failures += 1
                if not stopping:
                    self._stop.wait(RETRY_BACKOFF_S[min(failures, len(RETRY_BACKOFF_S)) - 1])
            if stopping:
                return
            if time.monotonic() - self._last_orphan_scan > ORPHAN_SCAN_INTERVAL_S:
                self.replay_orphans()

    def _flush_failed(self) -> bool:
        while self._failed:
            segment = self._failed[0]
            try:
                self.store.insert_records(segment.records)
            except ValueError:
                # A record the store rejects as data (not an outage): keep the good ones.
                self._insert_one_by_one(segment.records)
            except Exception:  # the database is down or refused: keep the segment, retry
                log.exception("writing %d records failed; will retry", len(segment.records))
                return False
            self.written += len(segment.records)
            segment.discard()
            self._failed.pop(0)
        return True

    def _insert_one_by_one(self, records: list[dict]) -> None:
        for record in records:
            try:
                self.store.insert_records([record])
            except ValueError:
                log.error("dropping a record the store cannot accept: %r",
                          {k: record.get(k) for k in ("id", "created_at", "path")})

    def replay_orphans(self) -> int:
        """Insert records left by a process that died before its writer caught up."""
        self._last_orphan_scan = time.monotonic()
        replayed = 0
        for path in self.journal.orphaned_segments():
            claimed = read_orphan(path)
            if claimed is None:
                continue
            fd, records = claimed
            try:
                for start in range(0, len(records), 1000):
                    self.store.insert_records(records[start:start + 1000])
                os.unlink(path)
                replayed += len(records)
            except Exception:
                log.exception("replaying %s failed; will retry", path)
            finally:
                os.close(fd)
        if replayed:
            log.warning("replayed %d journaled records from earlier processes", replayed)
        return replayed
