"""The background host's memory over a long run: RSS while its journal writer inserts
many records, then while it is idle (when it should give SQLite's page cache and the
heap back: background/journal_writer.py, release_after_idle_s).

Starts `python -m heliograph.background` (every job, as `heliograph serve` does) on a
fresh SQLite file, journals --records realistic records (the demo generator, live times,
a segment per 1,000 as a busy worker's rotation) as fast as it can, waits until the
writer has taken them all, then samples the host's RSS for --idle seconds:

    python bench/writer_memory.py --records 200000 --idle 45

`--pythonpath DIR` runs the host from another checkout (to compare two versions).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from heliograph.demo.history import HistoryGenerator
from heliograph.store.journal import Journal, closed_segments

MB = 1024 * 1024
WRITER_JOB = "heliograph.background.journal_writer:JournalWriterJob"


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) in MB from /proc/<pid>/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def journal_records(directory: Path, records: int) -> None:
    start = _dt.datetime.now(_dt.UTC).replace(minute=0, second=0, microsecond=0)
    journal = Journal(directory)
    i = 0
    for batch in HistoryGenerator(records, days=30, seed=7, until=time.time()).batches():
        for rec in batch:
            rec["created_at"] = (start + _dt.timedelta(microseconds=50 * i)
                                 ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            journal.append(rec)
            i += 1
            if i % 1000 == 0:
                journal.rotate()
    journal.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--idle", type=float, default=45.0, help="seconds sampled after")
    parser.add_argument("--pythonpath", default="", help="run the host from this checkout")
    parser.add_argument("--writer-only", action="store_true",
                        help="only the journal writer job (without the search indexer etc.)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hg-writer-memory-") as tmp:
        journal = Path(tmp) / "journal"
        journal.mkdir()
        env = dict(os.environ, HELIOGRAPH_CONFIG=str(Path(tmp) / "absent.toml"))
        if args.pythonpath:
            env["PYTHONPATH"] = args.pythonpath
        host = subprocess.Popen([sys.executable, "-m", "heliograph.background",
                                 "--journal", str(journal),
                                 "--database-url", f"sqlite:///{tmp}/heliograph.db",
                                 *(["--job", WRITER_JOB] if args.writer_only else [])],
                                env=env)
        try:
            time.sleep(2)
            idle_rss = rss_mb(host.pid)[0]
            started = time.monotonic()
            journal_records(journal, args.records)
            while closed_segments(journal):
                time.sleep(0.2)
            drained = time.monotonic()
            after_drain, peak = rss_mb(host.pid)
            samples = []
            while time.monotonic() - drained < args.idle:
                time.sleep(1)
                samples.append((time.monotonic() - drained, rss_mb(host.pid)[0]))
            final, peak = rss_mb(host.pid)
        finally:
            host.terminate()
            host.wait(10)
    print(f"records {args.records:,} journaled and inserted in {drained - started:.1f} s")
    print(f"host RSS MB: idle before {idle_rss:.1f}, when all were in {after_drain:.1f}, "
          f"peak {peak:.1f}, after {args.idle:.0f} s idle {final:.1f}")
    print("idle seconds -> RSS MB: " + ", ".join(f"{t:.0f}:{r:.1f}" for t, r in samples[::5]))


if __name__ == "__main__":
    main()
