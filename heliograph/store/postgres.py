"""PostgresStore: the Store on PostgreSQL, with psycopg 3 (sync) and a small pool.

Only this module imports psycopg, and open_store imports it only for a postgres URL, so
SQLite deployments never load the driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from heliograph.store import _pg_rollups as pg_rollups
from heliograph.store._schema import REQUEST_COLUMNS
from heliograph.store._sql import Dialect, SQLStore
from heliograph.store.search import body_words

POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    like_ci="ILIKE",
    lock_rows=" FOR UPDATE",
    types={"float": "DOUBLE PRECISION", "bigint": "BIGINT", "bool": "BOOLEAN",
           # Byte order whatever the database collation (en_US would sort differently
           # from SQLite), and cheaper comparisons on the listing index.
           "sortable_text": 'TEXT COLLATE "C"'},
)

# Tables whose every column is text (COPY'd in binary, with no conversion to get wrong).
_TEXT_TABLES = frozenset({"request_bodies", "request_properties", "search_pending",
                          "search_incoming"})

# Arbitrary constant naming "heliograph schema migrations" among advisory locks.
_MIGRATION_LOCK_ID = 0x68656C696F67

# How long a new connection may take to establish, and how long sent data may stay
# unacknowledged before the kernel drops the connection: a database that vanished
# (network cut, host down) fails a statement in seconds instead of hanging a thread.
CONNECT_TIMEOUT_S = 5
TCP_USER_TIMEOUT_MS = 10_000
# The pool retries a lost connection with a doubling delay; unbounded, a 45 s outage
# left it waiting ~15 s more after the database was back. Giving up after this long
# instead makes the next checkout start a fresh attempt at once.
RECONNECT_GIVE_UP_S = 3.0


class PostgresStore(SQLStore):
    dialect = POSTGRES
    integrity_errors = (psycopg.IntegrityError,)
    data_errors = SQLStore.data_errors + (psycopg.DataError,)
    outage_errors = (psycopg.OperationalError, PoolTimeout)
    # A transaction's round trips and commit shared by more records: 6,000 a transaction
    # took ~8% less server CPU a record than 2,000, and writes lock only their own rows.
    writer_batch = 5000

    def __init__(self, database_url: str, min_size: int = 1, max_size: int = 4,
                 timeout_s: float = 30.0) -> None:
        # Connect once directly so a wrong URL or password fails here with the server's
        # message, instead of as a pool timeout on first use.
        psycopg.connect(database_url, connect_timeout=int(timeout_s)).close()
        self._pool = ConnectionPool(
            database_url, min_size=min_size, max_size=max_size, timeout=timeout_s,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                    "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
                    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                    "keepalives_count": 2},
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            # One round trip per checkout, so a connection the server dropped (restart,
            # idle timeout) is replaced instead of failing a writer batch.
            check=ConnectionPool.check_connection,
            # The writer's staging table for rollup deltas, made once per session rather
            # than checked for in every batch (a round trip each).
            configure=self._configure,
            name="heliograph-store", open=True)

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.execute(pg_rollups.staging_ddl(self.dialect.types))
        conn.commit()

    @contextmanager
    def _transaction(self, write: bool, wait_s: float | None = None
                     ) -> Iterator[psycopg.Cursor]:
        # The pool's context commits on normal exit and rolls back on an exception.
        # Writes need no explicit lock: row locks and ON CONFLICT handle concurrency.
        with self._pool.connection(timeout=wait_s) as conn:
            with conn.cursor() as cur:
                yield cur

    # -- bulk writes with COPY (the fastest way into PostgreSQL) ---------------------
    def _bulk_insert_new(self, cur, rows: list[tuple]) -> int:
        # COPY straight into the table: a conflict (a journal replay, an id used twice)
        # fails the whole COPY, and the caller, seeing nothing inserted, rolls the
        # transaction back and goes row by row. Conflicts are rare; a staging table and an
        # INSERT … SELECT … ON CONFLICT for every batch wrote each row twice.
        try:
            self._copy(cur, "requests", REQUEST_COLUMNS, rows)
        except psycopg.errors.UniqueViolation:
            return 0
        return len(rows)

    def _bulk_insert(self, cur, table: str, columns: tuple[str, ...],
                     rows: list[tuple]) -> None:
        self._copy(cur, table, columns, rows)

    @staticmethod
    def _copy(cur, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if table in _TEXT_TABLES:
            # Binary: each value goes as its length and bytes. In text format both sides
            # scan every byte of the 1-4 KB bodies for tabs, newlines and backslashes
            # (escaping, then splitting and unescaping: 13% of the server's time).
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                          " (FORMAT BINARY)") as copy:
                copy.set_types(["text"] * len(columns))
                for row in rows:
                    copy.write_row(row)
            return
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _merge_rollups(self, cur, merges: list[tuple]) -> None:
        # Every table's deltas in one staging table and one statement (_pg_rollups.py).
        if not merges:
            return
        with cur.copy(pg_rollups.COPY_SQL) as copy:
            for row in pg_rollups.staging_rows(merges):
                copy.write_row(row)
        cur.execute(pg_rollups.merge_sql(tuple((table.name, updates)
                                               for table, _rows, updates in merges)))

    def _insert_bodies(self, cur, rows: list[tuple]) -> None:
        super()._insert_bodies(cur, rows)
        if rows:  # queued for the search indexer, in the same transaction
            self._copy(cur, "search_pending", ("organization", "request_id"),
                       [row[:2] for row in rows])

    def index_search(self, limit: int = 5000) -> int:
        # Words split here (store/search.py says why) and inserted as tsvectors through a
        # staging table. SKIP LOCKED: a second indexer would take other queue rows.
        with self._transaction(write=True) as cur:
            taken = cur.execute("DELETE FROM search_pending WHERE ctid = ANY(ARRAY("
                                "SELECT ctid FROM search_pending LIMIT %s"
                                " FOR UPDATE SKIP LOCKED)) RETURNING organization, request_id",
                                (limit,)).fetchall()
            if not taken:
                return 0
            bodies = cur.execute(
                "SELECT b.organization, b.request_id, b.request_body, b.response_body"
                " FROM request_bodies b JOIN unnest(%s::text[], %s::text[])"
                " AS t(organization, request_id) ON b.organization = t.organization"
                " AND b.request_id = t.request_id",
                ([org for org, _ in taken], [rid for _, rid in taken])).fetchall()
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS search_incoming (organization TEXT,"
                        ' request_id TEXT COLLATE "C", words TEXT) ON COMMIT DELETE ROWS')
            # The words as one text: COPY sends it as it is (an array is adapted per item).
            self._copy(cur, "search_incoming", ("organization", "request_id", "words"),
                       [(org, rid, body_words(req, resp)) for org, rid, req, resp in bodies])
            cur.execute("INSERT INTO request_words (organization, request_id, words)"
                        " SELECT organization, request_id,"
                        " array_to_tsvector(string_to_array(words, ' '))"
                        " FROM search_incoming ON CONFLICT DO NOTHING")
            return len(taken)

    def update_planner_stats(self) -> None:
        """ANALYZE the tables changed by a tenth since their last analysis (autovacuum's
        own rule). Autovacuum does this where it is on; some servers run with it off, and
        without statistics the planner reads a listing by model through a bitmap of the
        whole organization and sorts it (0.4 s on 50k rows instead of 1 ms)."""
        with self._transaction(write=True) as cur:
            stale = cur.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                " AND n_mod_since_analyze > 50 + 0.1 * n_live_tup").fetchall()
            for (table,) in stale:
                cur.execute(f'ANALYZE "{table}"')

    def _delete_bodies(self, cur, organization: str, request_ids: list[str]) -> None:
        for table in ("search_pending", "request_words", "request_bodies"):
            cur.execute(f"DELETE FROM {table} WHERE organization = %s"
                        " AND request_id = ANY(%s)", (organization, request_ids))

    def _lock_migrations(self, cur) -> None:
        # Held until the migration transaction ends; other migrate() calls wait here and
        # then find every step already recorded.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))

    def close(self) -> None:
        self._pool.close()
