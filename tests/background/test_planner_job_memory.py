"""The planner-statistics job holds no SQLite connection between its passes (issue 15,
session 16). It runs ANALYZE once after the host starts, then every ten minutes; its
connection kept ANALYZE's prepared statement (one program over every table and index,
~1.3 MB: sqlite3_db_status) and the pages it read (~0.5 MB) in the background host for
its whole life, its peak under load included. On a real SQLite file: each pass leaves
the statistics and no store; the next pass opens one again."""

import sqlite3
from pathlib import Path

from heliograph.background.jobs import JobContext
from heliograph.background.planner_stats import INTERVAL_S, PlannerStatsJob
from heliograph.store import open_store


def statistics(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0]


def test_each_pass_analyzes_and_then_lets_its_connection_go(tmp_path):
    database = tmp_path / "heliograph.db"
    store = open_store(f"sqlite:///{database}")   # the schema, as `serve` migrates it
    store.close()
    job = PlannerStatsJob(JobContext(tmp_path / "journal", f"sqlite:///{database}"))
    assert job.run_once() is True
    assert job.store is None
    assert statistics(database) > 0
    assert job.interval_s == INTERVAL_S

    assert job.run_once() is True   # the next pass (ten minutes later) opens its own
    assert job.store is None
    job.close()   # the host's stop: nothing left to close
