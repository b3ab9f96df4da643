"""The read side: every query the query API (and later the dashboard) makes.

heliograph/store/ writes (schema, migrations, inserts, keys); this package only reads,
on its own connections and threads (see reader.py), with a time limit on every query.
Filters are parsed once, in filters.py.
"""

from __future__ import annotations

from heliograph.analytics.reader import Analytics

DEFAULT_QUERY_TIMEOUT_S = 15.0
DEFAULT_THREADS = 2


def open_analytics(database_url: str, query_timeout_s: float = DEFAULT_QUERY_TIMEOUT_S,
                   threads: int = DEFAULT_THREADS) -> Analytics:
    """The reader for a migrated database (open_store has created the schema)."""
    if database_url.startswith("sqlite:"):
        from heliograph.analytics._sqlite import SQLiteConnections
        return Analytics(SQLiteConnections(database_url, query_timeout_s), threads)
    if database_url.startswith(("postgresql:", "postgres:")):
        from heliograph.analytics._postgres import PostgresConnections
        from heliograph.analytics.reader import PART_THREADS, SCAN_THREADS
        return Analytics(PostgresConnections(database_url, query_timeout_s,
                                             threads + SCAN_THREADS + PART_THREADS), threads)
    raise ValueError(f"unsupported database_url {database_url!r}")
