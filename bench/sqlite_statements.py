#!/usr/bin/env python3
"""Where the SQLite journal writer's time goes, by statement: CPU of the writer's own
thread inside each execute/executemany (and the COMMIT), per table, a record.

    python bench/sqlite_statements.py --records 100000            # live records, empty file
    python bench/sqlite_statements.py --records 100000 --history /tmp/h.db

The same run as `bench/store_writer.py --journal --live --only sqlite` (its functions,
imported), with every connection of the store made by a sqlite3.Connection subclass
whose cursors time their statements (time.thread_time around the C call: SQLite's work
and the module's binding of the rows). What is left of the thread's CPU is Python's:
decoding the journal, building rows and rollup deltas. The per-statement table of
bench/README.md "Writer throughput" (sessions 13 and 15) came from this.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # this tree's heliograph, then the bench

import store_writer  # noqa: E402

from heliograph.store import open_store  # noqa: E402

# statement label → [thread CPU seconds, rows]; only the thread running the drain.
SPENT: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
_TARGET = re.compile(r"^\s*(?:INSERT(?: OR \w+)? INTO|UPDATE|DELETE FROM|REPLACE INTO)\s+(\w+)",
                     re.IGNORECASE)
_MEASURED = threading.get_ident()


def label(sql: str) -> str:
    found = _TARGET.match(sql)
    return found.group(1) if found else sql.split(None, 1)[0].upper()


def _count(sql: str, started: float, rows: int) -> None:
    if threading.get_ident() == _MEASURED:
        spent = SPENT[label(sql)]
        spent[0] += time.thread_time() - started
        spent[1] += rows


class TimedCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=()):
        started = time.thread_time()
        try:
            return super().execute(sql, parameters)
        finally:
            _count(sql, started, 1)

    def executemany(self, sql, seq_of_parameters):
        rows = seq_of_parameters if isinstance(seq_of_parameters, list) \
            else list(seq_of_parameters)
        started = time.thread_time()
        try:
            return super().executemany(sql, rows)
        finally:
            _count(sql, started, len(rows))


class TimedConnection(sqlite3.Connection):
    def cursor(self, factory=TimedCursor):
        return super().cursor(factory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--history", help="start from a copy of this database")
    args = parser.parse_args()
    records = store_writer.generate(args.records, live=True)
    connect = sqlite3.connect
    sqlite3.connect = lambda *a, **kw: connect(*a, factory=TimedConnection, **kw)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        if args.history:
            shutil.copyfile(args.history, path)   # before any connection to the copy
        store = open_store(f"sqlite:///{path}", writer=True)
        SPENT.clear()   # the migrations' statements are not the writer's
        own = time.thread_time()
        store_writer.timed_drain(store, records, os.path.join(tmp, "journal"))
        own = time.thread_time() - own
        store.close()
    n = len(records)
    in_statements = sum(s for s, _r in SPENT.values())
    print(f"\n{n:,} live records; the writer's thread {own / n * 1e6:.1f} µs a record,"
          f" {in_statements / n * 1e6:.1f} in statements, the rest"
          f" {(own - in_statements) / n * 1e6:.1f} (Python)")
    print("| statement | µs a record | rows a record |\n|---|---|---|")
    for name, (spent, rows) in sorted(SPENT.items(), key=lambda kv: -kv[1][0]):
        if spent / n * 1e6 >= 0.01:
            print(f"| {name} | {spent / n * 1e6:.2f} | {rows / n:.2f} |")


if __name__ == "__main__":
    main()
