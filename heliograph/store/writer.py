"""The writer: moves closed journal segments into the store in batches.

It runs as its own process (`python -m heliograph.store.writer`), started by each gateway
worker, so inserts never hold the worker's GIL. It polls the journal folder, claims every
segment no live process holds, inserts its records and deletes it. When the database is
down it keeps the segments and retries; nothing is dropped. It exits when its parent
worker is gone, after one last pass.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from heliograph.store.journal import claim_segment, closed_segments

log = logging.getLogger("heliograph.writer")

POLL_INTERVAL_S = 0.1
BATCH = 2000
RETRY_BACKOFF_S = (0.5, 1, 2, 5, 10)


class SegmentWriter:
    def __init__(self, directory: Path, store):
        self.directory = Path(directory)
        self.store = store

    def drain(self) -> bool:
        """Insert every claimable segment. False when the store refused (retry later)."""
        for path in closed_segments(self.directory):
            claimed = claim_segment(path)
            if claimed is None:
                continue
            fd, records = claimed
            try:
                for start in range(0, len(records), BATCH):
                    self._insert(records[start:start + BATCH])
                path.unlink(missing_ok=True)
            except Exception:  # the database is down or refused: keep the segment
                log.exception("writing %d journaled records failed; will retry", len(records))
                return False
            finally:
                os.close(fd)
        return True

    def _insert(self, records: list[dict]) -> None:
        data_errors = self.store.data_errors
        try:
            self.store.insert_records(records)
            return
        except data_errors:
            pass
        # A record the store rejects as data (not an outage): the others go in one by
        # one, and the bad one as well as it can rather than blocking the journal.
        for record in records:
            try:
                self.store.insert_records([record])
            except data_errors as exc:
                self._insert_salvaged(record, exc)

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


def spawn(journal_dir: Path, database_url: str) -> subprocess.Popen:
    """Start a writer process for this worker."""
    return subprocess.Popen([sys.executable, "-m", "heliograph.store.writer",
                             "--journal", str(journal_dir), "--database-url", database_url,
                             "--parent", str(os.getpid())])


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Ask the writer to finish what is closed, and wait for it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m heliograph.store.writer")
    parser.add_argument("--journal", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="heliograph writer: %(message)s")

    from heliograph.store import open_store

    stopping = False

    def on_term(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker; it stops us
    # Background work yields to serving: under a burst the journal absorbs the records and
    # the writer catches up when the workers leave it CPU. Nothing is dropped either way.
    # Under bench/run.py's saturating load (2 workers, 2 cores) the writers took a steady
    # ~0.2 cores at nice 10, out of serving throughput; at nice 19 ~0.1 (they still make
    # progress) and catch up as soon as the load drops.
    os.nice(19)
    store = open_store(args.database_url)
    writer = SegmentWriter(Path(args.journal), store)
    failures = 0
    while True:
        parent_gone = args.parent and os.getppid() != args.parent
        ok = writer.drain()
        if stopping or parent_gone:
            break
        failures = 0 if ok else failures + 1
        time.sleep(POLL_INTERVAL_S if ok else
                   RETRY_BACKOFF_S[min(failures, len(RETRY_BACKOFF_S)) - 1])
    store.close()


if __name__ == "__main__":
    main()
