"""PostgresStore: the Store on PostgreSQL, with psycopg 3 (sync) and a small pool.

Only this module imports psycopg, and open_store imports it only for a postgres URL, so
SQLite deployments never load the driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from heliograph.store import _partitions
from heliograph.store import _pg_rollups as pg_rollups
from heliograph.store._schema import BODY_TABLE_COLUMNS, REQUEST_COLUMNS, body_bytes_row
from heliograph.store._sql import Dialect, SQLStore, _chunks
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
                          "search_incoming", "request_ids"})

# Whether this thread's insert_records COPYs numbers as text (a batch of one record). A
# binary COPY needs each value of its column's type (an int for an integer, a str for a
# text); text format let the server convert, say, a status sent as "200". A batch of
# several records goes in binary; if one of them fails so (TypeError, a data error), the
# journal writer retries the records one by one, in text, as they always went.
_TEXT_NUMBERS: ContextVar[bool] = ContextVar("heliograph_text_numbers", default=False)

# The tables changed by a tenth since their last analysis (autovacuum's own rule). A
# month's partition stands for its partitioned table, which autovacuum never analyzes and
# whose ANALYZE also covers every partition (sampled).
_STALE_TABLES = (
    "SELECT DISTINCT COALESCE(p.relname, s.relname) FROM pg_stat_user_tables s"
    " LEFT JOIN pg_inherits i ON i.inhrelid = s.relid"
    " LEFT JOIN pg_class p ON p.oid = i.inhparent"
    " WHERE s.schemaname = current_schema()"
    " AND s.n_mod_since_analyze > 50 + 0.1 * s.n_live_tup"
    # A partitioned table never analyzed (just migrated): without its own statistics a
    # search's join was planned as a walk over every record.
    " UNION SELECT c.relname FROM pg_class c WHERE c.relkind = 'p'"
    " AND c.relnamespace = current_schema()::regnamespace AND NOT EXISTS"
    " (SELECT 1 FROM pg_stats t WHERE t.schemaname = current_schema()"
    " AND t.tablename = c.relname)")
# Every table, after a bulk load the change counters may not show yet (partitioned ones
# standing for their partitions).
_EVERY_TABLE = ("SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
                " AND NOT relispartition"
                " AND relnamespace = current_schema()::regnamespace")

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
# Every pooled connection's session (the store's and the query API's): keepalives, so a
# server cut off by the network is noticed in ~20 s, not the kernel's two hours; UTF-8
# whatever the URL or PGCLIENTENCODING asks: Python's text is Unicode either way, a
# narrower encoding fails on any text beyond it (a LATIN1 session could not read back
# 漢字 the writer stored), and the bodies go into COPY as the journal's UTF-8 bytes.
SESSION_OPTIONS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                   "keepalives_count": 2, "client_encoding": "UTF8"}

# request_bodies in a binary COPY, the bodies given as their JSON's UTF-8 bytes: a text
# value goes in binary as its bytes in the connection's encoding (UTF-8: SESSION_OPTIONS),
# which bytea's dumper sends as they are (the server reads them as text, checking them
# as it does any text).
_BODY_TYPES = ["text", "text", "text", "bytea", "bytea"]

# Python conversions making each array of a numeric column one type (_merge_rows).
_ARRAY_CASTS = {"double precision": float, "integer": int, "bigint": int}

# Where a requests row (REQUEST_COLUMNS) holds what names the record.
_ID, _ORGANIZATION = REQUEST_COLUMNS.index("id"), REQUEST_COLUMNS.index("organization")


class PostgresStore(SQLStore):
    dialect = POSTGRES
    integrity_errors = (psycopg.IntegrityError,)
    data_errors = SQLStore.data_errors + (psycopg.DataError,)
    outage_errors = (psycopg.OperationalError, PoolTimeout)
    # A transaction's round trips and commit shared by more records: 6,000 a transaction
    # took ~8% less server CPU a record than 2,000, and writes lock only their own rows.
    writer_batch = 5000
    # Two batches in flight (store/writer.py InsertPipeline), on two connections: the
    # writer's Python work on one batch overlaps the server's on the other (psycopg lets
    # go of the GIL while it waits on the server), so a batch costs about the larger of
    # the two instead of their sum.
    writer_pipeline = 2
    # Bodies as bytes (_insert_bodies): no str made of them to be encoded back.
    _body_row = staticmethod(body_bytes_row)

    def __init__(self, database_url: str, min_size: int = 1, max_size: int = 4,
                 timeout_s: float = 30.0) -> None:
        # Connect once directly so a wrong URL or password fails here with the server's
        # message, instead of as a pool timeout on first use.
        psycopg.connect(database_url, connect_timeout=int(timeout_s)).close()
        self._pool = ConnectionPool(
            database_url, min_size=min_size, max_size=max_size, timeout=timeout_s,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                    "tcp_user_timeout": TCP_USER_TIMEOUT_MS, **SESSION_OPTIONS},
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            # One round trip per checkout, so a connection the server dropped (restart,
            # idle timeout) is replaced instead of failing a writer batch.
            check=ConnectionPool.check_connection,
            # The writer's staging table for rollup deltas, made once per session rather
            # than checked for in every batch (a round trip each).
            configure=self._configure,
            name="heliograph-store", open=True)
        # Whether requests is partitioned by month (migration 12, store/_partitions.py):
        # a store opened at an older version (a test building one) writes as before.
        self.partitioned = False
        self._partitions = _partitions.Partitions()
        # The requests columns' type names, for a binary COPY (None: not read yet, text).
        self._request_types: list[str] | None = None
        self._table_types: dict[str, dict[str, str]] = {}

    def migrate(self, until: int | None = None) -> None:
        super().migrate(until)
        with self._transaction(write=False) as cur:
            row = cur.execute("SELECT to_regclass('request_ids') IS NOT NULL").fetchone()
            self.partitioned = bool(row and row[0])
            types = dict(cur.execute(
                "SELECT a.attname, t.typname FROM pg_attribute a"
                " JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = 'requests'::regclass"
                " AND a.attnum > 0 AND NOT a.attisdropped").fetchall())
            self._request_types = ([types[c] for c in REQUEST_COLUMNS]
                                   if all(c in types for c in REQUEST_COLUMNS) else None)
        self.prepare_partitions()

    def prepare_partitions(self, now: float | None = None) -> None:
        if not self.partitioned:
            return
        month = _partitions.current_month(now)
        months = {month}
        for _ in range(_partitions.MONTHS_AHEAD):
            month = _partitions.next_month(month)
            months.add(month)
        self._partitions.forget()  # another process may have made or dropped some
        with self._transaction(write=True) as cur:
            self._partitions.ensure(cur, months)

    def _configure(self, conn: psycopg.Connection) -> None:
        for ddl in pg_rollups.staging_ddl(self.dialect.types):
            conn.execute(ddl)
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
    def insert_records(self, records: list[dict]) -> None:
        token = _TEXT_NUMBERS.set(len(records) == 1)
        try:
            self._insert_records(records)
        finally:
            _TEXT_NUMBERS.reset(token)

    def _insert_records(self, records: list[dict]) -> None:
        if self.partitioned and records:
            # A month without its partition (the demo's past, a client's old record) gets
            # one first, in a transaction of its own: the batch's may be undone and retried.
            prefixes = {str(rec.get("created_at"))[:7] for rec in records}  # not per record
            months = {m for prefix in prefixes if (m := _partitions.month_of(prefix))}
            if self._partitions.missing(months):
                try:
                    with self._transaction(write=True) as cur:
                        self._partitions.ensure(cur, months)
                except BaseException:
                    self._partitions.forget()
                    raise
        super().insert_records(records)

    def _insert_request_row(self, cur, row: tuple) -> bool:
        if not self.partitioned:
            return super()._insert_request_row(cur, row)
        if cur.execute("INSERT INTO request_ids (organization, id) VALUES (%s, %s)"
                       " ON CONFLICT DO NOTHING",
                       (row[_ORGANIZATION], row[_ID])).rowcount == 0:
            return False
        self._copy(cur, "requests", REQUEST_COLUMNS, [row])
        return True

    def _bulk_insert_new(self, cur, rows: list[tuple]) -> int:
        # COPY straight into the table: a conflict (a journal replay, an id used twice)
        # fails the whole COPY, and the caller, seeing nothing inserted, rolls the
        # transaction back and goes row by row. Conflicts are rare; a staging table and an
        # INSERT … SELECT … ON CONFLICT for every batch wrote each row twice.
        try:
            if self.partitioned:  # the ids first: they are what must be unique
                self._copy(cur, "request_ids", ("organization", "id"),
                           [(row[_ORGANIZATION], row[_ID]) for row in rows])
            self._copy(cur, "requests", REQUEST_COLUMNS, rows,
                       None if _TEXT_NUMBERS.get() else self._request_types)
        except psycopg.errors.UniqueViolation:
            return 0
        return len(rows)

    def _bulk_insert(self, cur, table: str, columns: tuple[str, ...],
                     rows: list[tuple]) -> None:
        self._copy(cur, table, columns, rows)

    @staticmethod
    def _copy(cur, table: str, columns: tuple[str, ...], rows: list[tuple],
              types: list[str] | None = None) -> None:
        if types is None and table in _TEXT_TABLES:
            types = ["text"] * len(columns)
        if types is not None:
            # Binary: each value goes as its length and bytes. In text format both sides
            # scan every byte of the 1-4 KB bodies for tabs, newlines and backslashes
            # (escaping, then splitting and unescaping: 13% of the server's time), and
            # the server parses every number and time from its digits.
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                          " (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            return
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _merge_rows(self, cur, table: str, columns: list[str], keys: dict[str, str],
                    rows: list[tuple], updates: str) -> None:
        # All the rows in one statement, each column sent as one array (unnest), rather
        # than executemany: there the server bound and ran the upsert once per row (the
        # cache-entry and rate-limit rollups, ~0.3 rows a live record).
        if len(rows) < 2 or _TEXT_NUMBERS.get():
            super()._merge_rows(cur, table, columns, keys, rows, updates)
            return
        types = self._column_types(cur, table)
        arrays = []
        for column, values in zip(columns, zip(*rows)):
            # One type per array (psycopg refuses [0, 2.5]): a counter summed as an int
            # in one row and a float in another goes as floats.
            type_ = types[column]
            cast = _ARRAY_CASTS.get(type_)
            arrays.append([v if v is None else cast(v) for v in values]
                          if cast is not None else list(values))
        names, key_list = ", ".join(columns), ", ".join(keys)
        # The arrays in binary (%b): in text psycopg quotes and escapes every item with a
        # regular expression, ~13 µs a row of the writer's CPU against ~5 (the same
        # errors for a list it cannot send: mixed types are a DataError either way).
        arguments = ", ".join(f"%b::{types[column]}[]" for column in columns)
        cur.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arguments})"
                    f" AS incoming ({names}) ORDER BY {key_list}"
                    f" ON CONFLICT ({key_list}) DO UPDATE SET {updates}", arrays)

    def _column_types(self, cur, table: str) -> dict[str, str]:
        """{column: its SQL type} of a table, read once per store."""
        types = self._table_types.get(table)
        if types is None:
            types = self._table_types[table] = dict(cur.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,)).fetchall())
        return types

    def _merge_rollups(self, cur, merges: list[tuple]) -> None:
        # Every table's deltas in two staging tables (by shape) and one statement
        # (_pg_rollups.py).
        if not merges:
            return
        binary = not _TEXT_NUMBERS.get()
        for staging, rows in pg_rollups.staged(merges):
            with cur.copy(staging.copy_binary_sql if binary else staging.copy_sql) as copy:
                if binary:
                    copy.set_types(staging.copy_types)
                for row in rows:
                    copy.write_row(row)
        # Prepared at once: planning it takes ~10 ms a batch (14 upserts), until psycopg
        # prepares it by itself after five uses on the connection.
        cur.execute(pg_rollups.merge_sql(tuple((table.name, updates)
                                               for table, _rows, updates in merges)),
                    prepare=True)

    def _insert_bodies(self, cur, rows: list[tuple]) -> None:
        if not rows:
            return
        self._copy(cur, "request_bodies", BODY_TABLE_COLUMNS, rows, _BODY_TYPES)
        # Queued for the search indexer, in the same transaction.
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

    def update_planner_stats(self, every_table: bool = False) -> None:
        """ANALYZE the tables changed by a tenth since their last analysis (autovacuum's
        own rule). Autovacuum does this where it is on; some servers run with it off, and
        without statistics the planner reads a listing by model through a bitmap of the
        whole organization and sorts it (0.4 s on 50k rows instead of 1 ms). every_table:
        all of them (after a bulk load)."""
        with self._transaction(write=True) as cur:
            for (table,) in cur.execute(_EVERY_TABLE if every_table else _STALE_TABLES
                                        ).fetchall():
                cur.execute(f'ANALYZE "{table}"')

    def _delete_bodies(self, cur, organization: str, request_ids: list[str]) -> None:
        for table in ("search_pending", "request_words", "request_bodies"):
            cur.execute(f"DELETE FROM {table} WHERE organization = %s"
                        " AND request_id = ANY(%s)", (organization, request_ids))

    def request_id_used(self, organization: str, request_id: str,
                        wait_s: float | None = None) -> bool:
        if not self.partitioned:
            return super().request_id_used(organization, request_id, wait_s)
        with self._transaction(write=False, wait_s=wait_s) as cur:  # one index, not one a month
            return cur.execute("SELECT 1 FROM request_ids WHERE organization = %s AND id = %s",
                               (organization, request_id)).fetchone() is not None

    # -- retention: whole months first --------------------------------------------------
    def purge(self, records_before: str | None, bodies_before: str | None,
              batch: int = 2000) -> int:
        if self.partitioned:
            done = self._purge_months(records_before, bodies_before, batch)
            if done:
                return done
        return super().purge(records_before, bodies_before, batch)

    def _purge_months(self, records_before: str | None, bodies_before: str | None,
                      batch: int) -> int:
        """One step of dropping whole months: empty a detached partition's dependents
        (properties, search index, ids) by a batch, drop it once they are gone, or detach
        the next month wholly before a cut-off. The rows deleted (a detach or a drop
        counts one); 0 when no whole month is left to drop."""
        if not (records_before or bodies_before):
            return 0
        with self._transaction(write=True) as cur:
            for table, name in self._partitions.detached(cur):
                keys = self._partitions.next_keys(cur, table, name, batch)
                if not keys:
                    self._partitions.drop(cur, name)
                    return 1
                by_org: dict[str, list[str]] = {}
                for organization, request_id in keys:
                    by_org.setdefault(organization, []).append(request_id)
                for organization, ids in by_org.items():
                    for chunk in _chunks(ids):
                        self._delete_dependents(cur, table, organization, chunk)
                return len(keys)
            if records_before and self._partitions.detach_before(
                    cur, ("request_bodies", "requests"), records_before):
                return 1
            if bodies_before and self._partitions.detach_before(
                    cur, ("request_bodies",), bodies_before):
                return 1
        return 0

    @staticmethod
    def _delete_dependents(cur, table: str, organization: str, ids: list[str]) -> None:
        """What refers to these records of a detached partition of `table`. Not the
        search indexer's queue (no index, and it drops entries whose bodies are gone)."""
        targets = ["request_words"]
        if table == "requests":
            targets += ["request_properties", "request_ids"]
        for target in targets:
            column = "id" if target == "request_ids" else "request_id"
            cur.execute(f"DELETE FROM {target} WHERE organization = %s"
                        f" AND {column} = ANY(%s)", (organization, ids))

    def _delete_records(self, cur, organization: str, ids: list[str]) -> None:
        super()._delete_records(cur, organization, ids)
        if self.partitioned:
            cur.execute("DELETE FROM request_ids WHERE organization = %s AND id = ANY(%s)",
                        (organization, ids))

    def _lock_migrations(self, cur) -> None:
        # Held until the migration transaction ends; other migrate() calls wait here and
        # then find every step already recorded.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))

    def close(self) -> None:
        self._pool.close()
