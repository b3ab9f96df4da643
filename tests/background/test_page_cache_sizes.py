"""Only the journal writer's SQLite connection gets the large page cache: every other
connection of the background host (search index, planner statistics, alerts) and of a
worker (keys, state, the query API) gets the small one, so the host's memory does not
grow with the database (bench/footprint.py). Asserted through PRAGMA cache_size on the
connections the real jobs and stores open on a real SQLite file."""

from pathlib import Path

import pytest

from heliograph.alerts.job import AlertsJob
from heliograph.analytics import open_analytics
from heliograph.background.jobs import JobContext
from heliograph.background.journal_writer import JournalWriterJob
from heliograph.background.planner_stats import PlannerStatsJob
from heliograph.background.search_index import SearchIndexJob
from heliograph.state.sql_state import SqlState
from heliograph.store import open_store
from heliograph.store.journal import Journal, closed_segments
from heliograph.store.sqlite import CACHE_KIB, WRITER_CACHE_KIB


def cache_kib(store) -> int:
    """The page cache of the calling thread's connection, KiB (negative PRAGMA: KiB)."""
    with store.transaction() as cur:
        (size,) = cur.execute("PRAGMA cache_size").fetchone()
    assert size < 0, "cache sizes are set in KiB"
    return -size


@pytest.fixture
def ctx(tmp_path: Path) -> JobContext:
    return JobContext(tmp_path / "journal", f"sqlite:///{tmp_path / 'heliograph.db'}")


def _writer_that_wrote_a_record(ctx, tmp_path, monkeypatch) -> JournalWriterJob:
    """The journal writer job after it inserted a journal's one record through its store."""
    monkeypatch.setenv("HELIOGRAPH_CONFIG", str(tmp_path / "absent.toml"))
    journal = Journal(ctx.journal_dir)
    journal.append({"id": "r1", "created_at": "2024-03-04T10:00:00.000000Z",
                    "organization": "org1"})
    journal.close()
    writer = JournalWriterJob(ctx)
    assert writer.run_once() is True
    assert closed_segments(ctx.journal_dir) == []  # it really wrote through that store
    return writer


def test_the_large_cache_is_the_journal_writers_only(ctx, tmp_path, monkeypatch):
    assert WRITER_CACHE_KIB >= 2 * CACHE_KIB  # the difference this is about
    writer = _writer_that_wrote_a_record(ctx, tmp_path, monkeypatch)
    assert cache_kib(writer.store) == WRITER_CACHE_KIB

    small = []
    for job in (SearchIndexJob(ctx), AlertsJob(ctx)):
        assert job.run_once() is True
        small.append((job.name, cache_kib(job.store)))
    alerts = job
    planner = PlannerStatsJob(ctx)  # holds no connection between its passes at all
    assert planner.run_once() is True and planner.store is None
    assert alerts.records.get_request("org1", "r1")["id"] == "r1"   # opens the reader
    with alerts.records.analytics._db.cursor() as cur:
        small.append(("alerts analytics", -cur.execute("PRAGMA cache_size").fetchone()[0]))
    for job in (writer, alerts):
        job.close()

    gateway_store = open_store(ctx.database_url)
    small.append(("gateway store", cache_kib(gateway_store)))
    state = SqlState(ctx.database_url, store=gateway_store)
    small.append(("shared state", cache_kib(state._store)))
    analytics = open_analytics(ctx.database_url)
    with analytics._db.cursor() as cur:
        small.append(("query API", -cur.execute("PRAGMA cache_size").fetchone()[0]))
    analytics.close()
    state._store.close()
    gateway_store.close()

    assert all(size <= CACHE_KIB for _name, size in small), small


def test_the_writers_cache_stays_within_the_hosts_memory_budget(ctx, tmp_path, monkeypatch):
    """The 2-worker process tree must stay under 150 MB (issue #15); the host idles at
    ~29 MB and peaks when its writer catches up with a backlog, its page cache full of
    the transaction's dirty pages: with 16 MB the host peaked at 61 MB draining a 48 MB
    backlog, with 4 MB (and one malloc arena) at 44, for no fewer records per CPU-second
    (bench/README.md, session 14). The size in effect on the writer's connection, after
    it has written."""
    writer = _writer_that_wrote_a_record(ctx, tmp_path, monkeypatch)
    try:
        assert cache_kib(writer.store) <= 4 * 1024
    finally:
        writer.close()
