"""The background host's peak RSS while it drains a journal backlog of a given size.

bench/run.py's tree peak counts the host at its largest: under load the journal writer
falls behind (nice 19) and takes its transactions at their largest, so the host's peak
is set by the largest transaction, not by how long the load lasts. This starts
`python -m heliograph.background` (every job, as `heliograph serve` does) on a fresh
SQLite file, lets it insert a first few records (schema made, modules imported: the
idle host), stops it (SIGSTOP), journals --records realistic records (the demo
generator, live times) in segments of --segment records as workers rotate them, lets it
go on and reads its peak RSS (VmHWM) once they are all in, and the host's CPU time for
the drain (every thread's: the writer's and the search indexer's behind it, until the
host is idle again) as records per host CPU-second. The same backlog every run, so two
versions compare on the same work whatever the machine's load:

    python bench/host_backlog_peak.py --records 5000 --runs 3
    python bench/host_backlog_peak.py --pythonpath /path/to/other/checkout

`--setup CODE` runs CODE in the host before it starts (to try a setting, say
`import heliograph.store.sqlite as s; s.SQLiteStore.writer_batch_bytes = 1 << 20`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from writer_memory import rss_mb

from heliograph.demo.history import HistoryGenerator
from heliograph.store.journal import Journal, closed_segments

WARM_RECORDS = 200


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, every thread), seconds."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, quiet_cpu_s: float = 0.03, every_s: float = 0.5) -> None:
    """Until the process uses under quiet_cpu_s of CPU in every_s: the jobs behind the
    writer (the search index) are done too."""
    last = cpu_seconds(pid)
    while True:
        time.sleep(every_s)
        now = cpu_seconds(pid)
        if now - last < quiet_cpu_s:
            return
        last = now


def wait_drained(journal: Path, timeout_s: float = 600.0) -> float:
    start = time.monotonic()
    while closed_segments(journal):
        if time.monotonic() - start > timeout_s:
            raise SystemExit("the host did not drain the journal in time")
        time.sleep(0.05)
    return time.monotonic() - start


def one_run(records: list[dict], segment: int, pythonpath: str, setup: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="hg-host-backlog-") as tmp:
        journal_dir = Path(tmp) / "journal"
        journal_dir.mkdir()
        env = dict(os.environ, HELIOGRAPH_CONFIG=str(Path(tmp) / "absent.toml"))
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        argv = ["--journal", str(journal_dir), "--database-url", f"sqlite:///{tmp}/h.db"]
        code = (f"{setup}\nimport sys\nfrom heliograph.background.host import main\n"
                f"sys.exit(main({argv!r}))")
        # cwd: `-c` puts the working directory first on sys.path, ahead of PYTHONPATH.
        host = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp,
                                stderr=subprocess.DEVNULL)
        try:
            start = _dt.datetime.now(_dt.UTC)

            def append(journal: Journal, i: int) -> None:
                rec = records[i]
                rec["created_at"] = (start + _dt.timedelta(microseconds=50 * i)
                                     ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                journal.append(rec)

            journal = Journal(journal_dir)
            for i in range(WARM_RECORDS):
                append(journal, i)
            journal.close()
            time.sleep(2)
            wait_drained(journal_dir)
            time.sleep(1)
            idle = rss_mb(host.pid)[0]
            os.kill(host.pid, signal.SIGSTOP)
            journal = Journal(journal_dir)
            for i in range(WARM_RECORDS, len(records)):
                append(journal, i)
                if i % segment == 0:
                    journal.rotate()
            journal.close()
            backlog = sum(p.stat().st_size for p in closed_segments(journal_dir))
            cpu = cpu_seconds(host.pid)
            os.kill(host.pid, signal.SIGCONT)
            took = wait_drained(journal_dir)
            wait_idle(host.pid)
            # The whole host's CPU for the drain: the writer's and what its batches cost
            # the other jobs (the search indexer indexes every body the writer stored).
            cpu = cpu_seconds(host.pid) - cpu
            rss, peak = rss_mb(host.pid)
        finally:
            os.kill(host.pid, signal.SIGCONT)
            host.terminate()
            host.wait(120)
    return {"backlog_mb": backlog / 1e6, "idle": idle, "peak": peak, "after": rss,
            "seconds": took, "cpu": cpu, "records": len(records) - WARM_RECORDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--segment", type=int, default=250,
                        help="records per journal segment")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pythonpath", default="", help="run the host from this checkout")
    parser.add_argument("--setup", default="", help="Python run in the host before it starts")
    args = parser.parse_args()
    records = [rec for batch in HistoryGenerator(args.records, days=30, seed=7,
                                                 until=time.time()).batches()
               for rec in batch]
    for _ in range(args.runs):
        r = one_run(records, args.segment, args.pythonpath, args.setup)
        print(f"backlog {r['backlog_mb']:.1f} MB: host RSS idle {r['idle']:.1f} MB, "
              f"peak {r['peak']:.1f} (+{r['peak'] - r['idle']:.1f}), after {r['after']:.1f}; "
              f"drained in {r['seconds']:.1f} s, {r['cpu']:.2f} host CPU-s "
              f"({r['records'] / r['cpu']:,.0f} records per host CPU-second)", flush=True)


if __name__ == "__main__":
    main()
