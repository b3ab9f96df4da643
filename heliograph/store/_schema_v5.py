"""Version 5 of the schema (store/_schema.py MIGRATIONS): the bodies move to their own
table with a text-search index (store/search.py), and the filters get their indexes.
Apart from _schema.py only to keep modules small; PerDialect lives here for the same
reason (migration 5 is the first step that differs by database)."""

from __future__ import annotations

from dataclasses import dataclass

from heliograph.store import search


@dataclass(frozen=True)
class PerDialect:
    """A migration statement that differs by database ("" = nothing to do there)."""
    sqlite: str
    postgres: str

    def for_dialect(self, name: str) -> str:
        return self.sqlite if name == "sqlite" else self.postgres


# Version 5: the bodies move to their own table, indexed for text search. On SQLite `seq`
# is the full-text index's rowid (AUTOINCREMENT: never reused, even after retention
# empties the table).
BODIES_TABLE = PerDialect(
    sqlite="""CREATE TABLE request_bodies (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            organization TEXT NOT NULL,
            request_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            request_body TEXT,
            response_body TEXT,
            UNIQUE (organization, request_id)
        )""",
    postgres="""CREATE TABLE request_bodies (
            organization TEXT NOT NULL,
            request_id TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            request_body TEXT,
            response_body TEXT,
            PRIMARY KEY (organization, request_id)
        )""")
# PostgreSQL compresses large bodies with pglz by default: a third of the writer's time
# on a batch. lz4 (PostgreSQL 14+, when built with it) compresses about as well, several
# times faster; where it is unavailable the default stays.
BODIES_LZ4 = PerDialect(sqlite="", postgres="""DO $$ BEGIN
            EXECUTE 'ALTER TABLE request_bodies ALTER COLUMN request_body SET COMPRESSION'
                    ' lz4, ALTER COLUMN response_body SET COMPRESSION lz4';
        EXCEPTION WHEN OTHERS THEN NULL;
        END $$""")
# The search index (store/search.py), filled behind the writer.
SEARCH_INDEX = (
    PerDialect(sqlite=search.SQLITE_FTS_DDL,
               postgres="""CREATE TABLE request_words (
            organization TEXT NOT NULL,
            request_id TEXT COLLATE "C" NOT NULL,
            words TSVECTOR NOT NULL,
            PRIMARY KEY (organization, request_id)
        )"""),
    PerDialect(sqlite="""CREATE TABLE search_progress (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            indexed_seq INTEGER NOT NULL
        )""",
               postgres="CREATE INDEX request_words_search ON request_words"
                        " USING GIN (words)"),
    # PostgreSQL: the bodies waiting for the indexer, a queue the writer appends to.
    PerDialect(sqlite="",
               postgres="CREATE TABLE search_pending (organization TEXT NOT NULL,"
                        " request_id TEXT NOT NULL)"),
    # Bodies moved here by this migration are indexed by the search-index job like new
    # ones (on a large log, indexing them here would hold up the gateway's start).
    PerDialect(sqlite="INSERT INTO search_progress (id, indexed_seq) VALUES (1, 0)",
               postgres="INSERT INTO search_pending (organization, request_id)"
                        " SELECT organization, request_id FROM request_bodies"),
)
# One index per filter the query API offers that can be selective, each ending in the
# listing order so a filtered page is read in order and stops at its limit (user, session
# and time already have theirs). Model and provider have few values, each common: the
# time index finds a page of them quickly, and every index costs the writer ~10%.
# User, session and cache are NULL for many records: only the others are indexed, which
# costs the writer nothing for those records and gives SQLite's planner statistics of
# the values themselves (a million NULLs counted as one value made a session look common).
FILTER_INDEXES = (
    "DROP INDEX requests_org_user",
    "CREATE INDEX requests_org_user ON requests (organization, user_id, created_at, id)"
    " WHERE user_id IS NOT NULL",
    "DROP INDEX requests_org_session",
    "CREATE INDEX requests_org_session ON requests"
    " (organization, session_id, created_at, id) WHERE session_id IS NOT NULL",
    "CREATE INDEX requests_org_status ON requests (organization, status, created_at, id)",
    "CREATE INDEX requests_org_cache ON requests (organization, cache, created_at, id)"
    " WHERE cache IS NOT NULL",
    # Covering: a property filter reads its request ids from the index alone.
    "CREATE INDEX request_properties_value"
    " ON request_properties (organization, name, value, request_id)",
    "DROP INDEX request_properties_lookup",
)
