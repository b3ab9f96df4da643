"""Writer throughput: records/s through Store.insert_records, on SQLite and PostgreSQL.

The records are realistic (heliograph.demo's generator: 20 models, users, sessions,
properties, errors, cache hits, 1-4 KB bodies) and generated before the clock starts, so
only the store is timed: row encoding, the bulk insert (COPY on PostgreSQL), bodies and
their text-search index, properties, indexes, and the commit, in batches the size the
journal writer uses. A standalone script, not a test:

    python bench/store_writer.py --records 100000
    python bench/store_writer.py --records 100000 --postgres postgresql://postgres@127.0.0.1/test

On PostgreSQL it works in a schema of its own (dropped afterwards).

--journal times the journal writer itself (store/writer.py SegmentWriter.drain): the
records are appended to journal segments first (a segment per 1,000 records, as a busy
worker's 0.2 s rotation), then read, decoded and inserted, as in the background host.

--live gives the records the times a gateway would (50 µs apart, 20,000 requests/s), as
the journal writer sees them: a batch falls in one hour, so rollups get one row per
group, not one per record as when 30 days are filled at once (a demo fill, the default).

--history FILE starts SQLite from a copy of that database (say `heliograph demo
--records 300000 --days 30` ending before now), as a gateway's log that has been written
for weeks: tables keyed by something other than time then hold the live hour's rows
among every earlier hour's, which an empty database cannot show.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import math
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from heliograph.demo.history import HistoryGenerator
from heliograph.store import open_store
from heliograph.store.journal import Journal
from heliograph.store.writer import BATCH, PIPELINE, InsertPipeline, SegmentWriter

SEARCH = False
HISTORY: str | None = None   # --history: a SQLite database to start from (copied)
JOURNAL = False   # --journal: through journal segments and SegmentWriter
PIPELINE_DEPTH: int | None = None   # --pipeline: batches in flight (None: the store's)


def generate(records: int, live: bool = False) -> list[dict]:
    gen = HistoryGenerator(records, days=30, seed=7, until=time.time())
    flat = [rec for batch in gen.batches() for rec in batch]
    if live:
        start = _dt.datetime.now(_dt.UTC).replace(minute=0, second=0, microsecond=0)
        for i, rec in enumerate(flat):
            at = start + _dt.timedelta(microseconds=50 * i)
            rec["created_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            # The id's time too (its first 48 bits), as a gateway's: made from the same
            # wall time as created_at (proxy/exchange.fast_uuid7).
            ms = f"{int(at.timestamp() * 1000):012x}"
            rec["id"] = f"{ms[:8]}-{ms[8:]}{rec['id'][13:]}"
    # The real writer holds one batch, not every record of the run: keep these out of
    # the garbage collector's full passes, which would otherwise be timed too.
    gc.freeze()
    return flat


def writer_batches(store, records: list[dict]) -> list[list[dict]]:
    """The transactions store/writer.py would make of these records: at most the store's
    writer_batch records and (about) its writer_batch_bytes of journal each, a record's
    journal line being its JSON."""
    size = getattr(store, "writer_batch", BATCH)
    max_bytes = getattr(store, "writer_batch_bytes", 0) or math.inf
    batches: list[list[dict]] = [[]]
    taken = 0
    for rec in records:
        if len(batches[-1]) >= size or taken >= max_bytes:
            batches.append([])
            taken = 0
        batches[-1].append(rec)
        taken += len(orjson.dumps(rec)) + 1
    return batches


def timed_insert(store, records: list[dict]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds), inserting in the journal writer's
    batches for this store. On a shared machine the CPU time tells what one free core
    would do (for SQLite it is nearly all the work; for PostgreSQL the server's share is
    not in it)."""
    depth = PIPELINE_DEPTH or getattr(store, "writer_pipeline", PIPELINE)
    batches = writer_batches(store, records)

    def insert(batch: list[dict]) -> int:
        store.insert_records(batch)
        return len(batch)

    pipeline = InsertPipeline(insert, depth)
    started, cpu = time.perf_counter(), time.process_time()   # every thread's CPU
    for batch in batches:
        pipeline.submit(batch)
    pipeline.wait()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    pipeline.close()
    return seconds, cpu


def timed_drain(store, records: list[dict], directory: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the journal writer moving `records`, journaled
    before the clock starts, into the store."""
    journal = Journal(directory)
    for i, rec in enumerate(records, 1):
        journal.append(rec)
        if i % 1000 == 0:
            journal.rotate()
    journal.close()
    writer = SegmentWriter(Path(directory), store)
    wrote = thread_bytes_written()
    started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    if not writer.drain():
        raise RuntimeError("the writer failed (see the log)")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    own = time.thread_time() - own
    if wrote is not None and (now := thread_bytes_written()) is not None and \
            getattr(store, "writer_pipeline", PIPELINE) == 1:
        # SQLite (whose drain inserts on its own thread): the write-ahead log's frames (a
        # page and a 24-byte header each); the checkpoints' copies are another thread's.
        per_record = (now - wrote) / len(records)
        print(f"the writer's own thread wrote {per_record:,.0f} bytes a record"
              f" (~{per_record / (4096 + 24):.2f} log pages of 4 KB)", flush=True)
    writer.close()
    if getattr(store, "writer_pipeline", PIPELINE) == 1:
        # The drain's own thread does all the inserting: the rest of the process's CPU
        # is other threads' (SQLite's checkpoints run apart: store/_sqlite_checkpoint.py).
        print(f"the writer's own thread: {len(records) / own:,.0f} records per its"
              f" CPU-second ({own / len(records) * 1e6:.0f} µs a record)", flush=True)
    return seconds, cpu


def thread_bytes_written() -> int | None:
    """Bytes this thread has passed to write calls so far (Linux's per-thread I/O
    counters; None elsewhere)."""
    try:
        with open("/proc/thread-self/io") as fh:
            fields = dict(line.split(": ") for line in fh.read().splitlines())
    except OSError:
        return None
    return int(fields["wchar"])


def timed(store, records: list[dict], tmp: str) -> tuple[float, float]:
    if JOURNAL:
        return timed_drain(store, records, os.path.join(tmp, "journal"))
    return timed_insert(store, records)


def bench_sqlite(records: list[dict], total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        before = 0
        if HISTORY:
            # Copied before any connection to the copy exists in this process (closing a
            # file SQLite has open would drop its locks on it); migrated by open_store.
            shutil.copyfile(HISTORY, path)
            before = os.path.getsize(path)
        store = open_store(f"sqlite:///{path}", writer=True)
        seconds, cpu = timed(store, records, tmp)
        report("sqlite", total, seconds, cpu, sqlite_size(store, path) - before)
        if SEARCH:
            search_numbers(store, f"sqlite:///{path}", "sqlite")
            print(f"sqlite    with the search index: {sqlite_size(store, path) / total:,.0f}"
                  " bytes/record", flush=True)
        store.close()


def sqlite_size(store, path: str) -> int:
    """The file's size once the write-ahead log is folded in (it holds up to 64 MB)."""
    with store.transaction() as cur:
        # Busy while the writer's checkpoint thread (store/_sqlite_checkpoint.py) still
        # copies the last batches: the log would be counted too.
        while cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0][0]:
            time.sleep(0.05)
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def bench_postgres(url: str, records: list[dict], total: int) -> None:
    import psycopg

    schema = "bench_writer_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    schema_url = f"{url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
    store = open_store(schema_url, writer=True)
    try:
        before = backends_cpu(store, schema)
        with tempfile.TemporaryDirectory() as tmp:
            seconds, cpu = timed(store, records, tmp)
        after = backends_cpu(store, schema)
        if after:   # the server's share, when it runs on this machine
            server_cpu = sum(used - before.get(pid, 0.0) for pid, used in after.items())
            print(f"postgres  server backends: {total / server_cpu:,.0f} records per their"
                  f" CPU-second; writer and server together {total / (cpu + server_cpu):,.0f}",
                  flush=True)
        with store.transaction() as cur:
            cur.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = %s AND c.relkind = 'r'", (schema,))
            size = int(cur.fetchone()[0] or 0)
        report("postgres", total, seconds, cpu, size)
        if SEARCH:
            search_numbers(store, schema_url, "postgres")
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def backends_cpu(store, application: str) -> dict[int, float]:
    """CPU seconds so far of each of the store's server processes ({} if not local)."""
    with store.transaction() as cur:
        pids = [row[0] for row in cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (application,)).fetchall()]
    found = {pid: process_cpu(pid) for pid in pids}
    return {pid: used for pid, used in found.items() if used is not None}


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a local PostgreSQL process, None if there is none
    of that pid here (the server runs elsewhere)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"postgres" not in fh.read():
                return None
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def search_numbers(store, url: str, label: str) -> None:
    """The search indexer's rate (it must keep up with the writer too), then the median
    time of a listing with q= a word in no record, and a word in many."""
    from heliograph.analytics import open_analytics
    from heliograph.analytics.filters import RequestFilter

    started, indexed = time.perf_counter(), 0
    while done := store.index_search(5000):
        indexed += done
    seconds = time.perf_counter() - started
    print(f"{label:9} search index: {indexed:,} bodies in {seconds:.2f} s ="
          f" {indexed / max(seconds, 1e-9):,.0f} bodies/s", flush=True)
    store.update_planner_stats()
    reader = open_analytics(url)
    try:
        for q in ("zzyzxq", "content"):
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                reader.list_requests("default", RequestFilter(q=q), 50)
                times.append(time.perf_counter() - t0)
            times.sort()
            print(f"{label:9} list q={q!r}: median {times[2] * 1000:.1f} ms", flush=True)
    finally:
        reader.close()


def report(store: str, total: int, seconds: float, cpu: float, size: int) -> None:
    print(f"{store:9} {total:>9,} records in {seconds:6.2f} s = {total / seconds:>8,.0f}"
          f" records/s ({total / cpu:,.0f} per CPU-second of the writer);"
          f" {size / total:,.0f} bytes/record on disk", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL", ""),
                        help="a PostgreSQL URL (default $HELIOGRAPH_TEST_POSTGRES_URL)")
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--live", action="store_true",
                        help="records timed as a live gateway's (see above), not 30 days")
    parser.add_argument("--pipeline", type=int, default=None,
                        help="batches in flight at once (default: the store's, as the"
                             " journal writer; 1 inserts them one after another)")
    parser.add_argument("--journal", action="store_true",
                        help="through journal segments and the journal writer (decoding"
                             " included), not Store.insert_records alone")
    parser.add_argument("--history", help="SQLite: start from a copy of this database")
    parser.add_argument("--search", action="store_true",
                        help="then index the bodies and time text searches")
    args = parser.parse_args()
    global SEARCH, PIPELINE_DEPTH, JOURNAL, HISTORY
    SEARCH = args.search
    HISTORY = args.history
    JOURNAL = args.journal
    PIPELINE_DEPTH = args.pipeline
    records = generate(args.records, args.live)
    total = len(records)
    if args.only != "postgres":
        bench_sqlite(records, total)
    if args.postgres and args.only != "sqlite":
        bench_postgres(args.postgres, records, total)


if __name__ == "__main__":
    main()
