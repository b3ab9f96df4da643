"""Each background job's SQLite store has one connection (issue 15, session 15).

A job's passes run on its own thread while the journal is behind and on a lane thread at
the background priority otherwise (background/priority.py), never both at once; the first
pass always runs on the job's thread. With a connection per thread every job held two,
each with its page cache (2 MB) and its prepared statements (the search index's FTS ones
~1.2 MB): the host's peak draining a backlog was ~3 MB higher (bench/README.md).

Counted from outside: every SQLite connection holds a descriptor of the database file
(the write-ahead log and its index are files of their own), read in /proc/<pid>/fd."""

from __future__ import annotations

import os
import time
from pathlib import Path

from servers import Gateway
from test_host_imports import host_after_logged_calls


def database_descriptors(pid: int, database: Path) -> int:
    count = 0
    for entry in os.scandir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(entry.path) == str(database)
        except OSError:
            pass  # closed since the listing
    return count


def test_each_background_job_holds_one_connection(upstream, tmp_path):
    database = tmp_path / "heliograph.db"
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{database}")
    try:
        pid = host_after_logged_calls(gw)
        time.sleep(2)  # the search index (every 0.2 s) has run on both of its threads
        # The writer's connection, the search index's, the alerts job's and ANALYZE's
        # (planner stats: one pass at start). Retention is off by default and the
        # writer's checkpoints (a connection of their own) are not due after 20 records.
        # A connection per thread: the search index's and the alerts job's lanes, 6.
        assert 3 <= database_descriptors(pid, database) <= 4
    finally:
        gw.stop()
