"""Storage: one narrow interface (base.Store), SQLite and PostgreSQL implementations,
chosen by URL and imported lazily so a driver loads only when configured."""

from __future__ import annotations

from heliograph.store.base import Store


def open_store(database_url: str) -> Store:
    """Return a migrated Store for the URL (sqlite:///path or postgresql://...)."""
    store: Store
    if database_url.startswith("sqlite:"):
        from heliograph.store.sqlite import SQLiteStore
        store = SQLiteStore(database_url)
    elif database_url.startswith(("postgresql:", "postgres:")):
        from heliograph.store.postgres import PostgresStore
        store = PostgresStore(database_url)
    else:
        raise ValueError(f"unsupported database_url {database_url!r}: "
                         "use sqlite:///path or postgresql://user@host:port/db")
    store.migrate()
    return store
