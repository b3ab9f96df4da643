"""Loading generated history into the database through the store's own insert path
(Store.insert_records, large batches, one transaction each), and the command's summary."""

from __future__ import annotations

import multiprocessing
import os
import queue
import time

from heliograph.demo.history import HistoryGenerator, Summary


def _produce(out, args: tuple) -> None:
    """The generator process: batches, then the Summary (or the error that stopped it)."""
    try:
        gen = HistoryGenerator(*args)
        for batch in gen.batches():
            out.put(batch)
        out.put(gen.summary)
    except BaseException as exc:
        out.put(RuntimeError(f"demo generator failed: {exc!r}"))


def fill(store, records: int, days: float, seed: int | None = None,
         until: float | None = None, organization: str = "default",
         progress=None) -> Summary:
    """Generate `records` over the `days` before `until` (default now) and insert them.

    Records are generated in a forked child process while this one inserts: the store's
    insert (row encoding and the database write) and generation each take about one core,
    so they run side by side instead of in turn."""
    t0 = time.perf_counter()
    args = (records, days, seed, until if until is not None else time.time(), organization)
    ctx = multiprocessing.get_context("fork")
    batches = ctx.Queue(maxsize=4)
    producer = ctx.Process(target=_produce, args=(batches, args), name="heliograph-demo",
                           daemon=True)
    producer.start()
    done = 0
    try:
        while True:
            try:
                item = batches.get(timeout=1.0)
            except queue.Empty:
                if not producer.is_alive():
                    raise RuntimeError("demo generator process died") from None
                continue
            if isinstance(item, Summary):
                summary = item
                break
            if isinstance(item, BaseException):
                raise item
            store.insert_records(item)
            done += len(item)
            if progress is not None:
                progress(done, time.perf_counter() - t0)
    finally:
        if producer.is_alive():
            producer.terminate()  # an insert failed: stop generating
        producer.join()
    summary.seconds = time.perf_counter() - t0
    return summary


def _db_size(store) -> str:
    path = getattr(store, "path", None)  # SQLite: the file and its write-ahead log
    if not path:
        return "n/a"
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    return f"{size / 1e6:.1f} MB"


def run(database_url: str, records: int, days: float, seed: int | None, until: float | None,
        organization: str, echo) -> Summary:
    """The `heliograph demo` command: fill the database and print a summary."""
    from heliograph.store import open_store

    # A bulk insert like the journal writer's: the same large page cache (its speed).
    store = open_store(database_url, writer=True)
    try:
        def progress(done: int, elapsed: float) -> None:
            if done % 100_000 == 0 or done == records:
                echo(f"  {done:>10,} records  {done / max(elapsed, 1e-9):>9,.0f} records/s")

        summary = fill(store, records, days, seed, until, organization, progress)
        # Statistics now, not at the gateway's first planner-stats run: on a bulk-loaded
        # PostgreSQL log the first queries were planned blind (a listing by model hit the
        # 15 s query timeout on 1M records until an ANALYZE; then 20 ms).
        started = time.perf_counter()
        store.update_planner_stats(every_table=True)
        stats_s = time.perf_counter() - started
        size = _db_size(store)
    finally:
        store.close()
    echo(f"records:    {summary.records}")
    echo(f"users:      {len(summary.users)}")
    echo(f"sessions:   {summary.sessions}")
    echo(f"errors:     {summary.errors}")
    echo(f"cache hits: {summary.cache_hits}")
    echo(f"total cost: ${summary.cost_usd:.6f}")
    echo(f"time:       {summary.seconds:.1f}s ({summary.records / max(summary.seconds, 1e-9):,.0f}"
         f" records/s)")
    echo(f"planner statistics: {stats_s:.1f}s")
    echo(f"db size:    {size} ({database_url})")
    return summary
