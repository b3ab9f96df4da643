"""Storage: one narrow interface (base.Store), SQLite and PostgreSQL implementations,
chosen by URL and imported lazily so a driver loads only when configured."""

from __future__ import annotations

from heliograph.store.base import Store


def open_store(database_url: str, writer: bool = False, one_thread_at_a_time: bool = False
               ) -> Store:
    """Return a migrated Store for the URL (sqlite:///path or postgresql://...).

    writer: the journal writer's store (one per machine), whose SQLite connection gets the
    large page cache (store/sqlite.py WRITER_CACHE_KIB); every other one a small cache. Its
    threads share that one connection (one at a time) and its checkpoints run apart.

    one_thread_at_a_time: a background job's store, used by the job's thread and by its
    lane at the background priority (background/priority.py), never both at once. Its
    SQLite threads share one connection too: with one each, every job held two page
    caches (2 MB each) and two sets of prepared statements (the search index's FTS
    statements ~1.2 MB), bench/README.md session 15."""
    store: Store
    if database_url.startswith("sqlite:"):
        from heliograph.store.sqlite import CACHE_KIB, WRITER_CACHE_KIB, SQLiteStore
        store = SQLiteStore(database_url,
                            cache_kib=WRITER_CACHE_KIB if writer else CACHE_KIB,
                            writer=writer, shared=one_thread_at_a_time)
    elif database_url.startswith(("postgresql:", "postgres:")):
        from heliograph.store.postgres import PostgresStore
        store = PostgresStore(database_url)
    else:
        raise ValueError(f"unsupported database_url {database_url!r}: "
                         "use sqlite:///path or postgresql://user@host:port/db")
    store.migrate()
    return store
