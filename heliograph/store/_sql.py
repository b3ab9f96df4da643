"""SQLStore: the whole Store (the write side) written once over a DB-API cursor. SQLiteStore and
PostgresStore only supply a Dialect, a transaction and a migration lock.

SQL is written with "?" placeholders and rewritten to "%s" for psycopg; none of these
statements contains a literal "?" or "%" (LIKE patterns are passed as parameters).
"""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache

from heliograph.records import utc_iso
from heliograph.scores import merge_scores
from heliograph.store import _cache_entries as cache_entries
from heliograph.store import _ratelimit_rollup as ratelimit_rollup
from heliograph.store._schema import (
    BODY_TABLE_COLUMNS,
    MIGRATIONS,
    REQUEST_COLUMNS,
    SCHEMA_MIGRATIONS_DDL,
    PerDialect,
    body_row,
    dumps,
    loads,
    property_rows,
    record_to_row,
)
from heliograph.store.base import KeyRow


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str             # the driver's paramstyle: "?" (qmark) or "%s" (format)
    like_ci: str                 # case-insensitive LIKE
    lock_rows: str               # suffix locking selected rows for a read-modify-write
    types: dict[str, str]        # DDL type names for {float}, {bigint}, {bool}, {sortable_text}


_KEY_COLUMNS = ("id, organization, name, prefix, admin, created_at, revoked_at, expires_at,"
                " allowed_models_json")
_INSERT_REQUEST = (f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)})"
                   f" VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
                   " ON CONFLICT (organization, id) DO NOTHING")  # a journal replay
_PROPERTY_COLUMNS = ("request_id", "organization", "name", "value")
_ATTEMPTS_AT = REQUEST_COLUMNS.index("attempts_json")


def _chunks(items: list[str], size: int = 500):
    """Slices of at most `size`: the statements' parameters stay under SQLite's limit."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _key_row(row) -> KeyRow:
    id_, organization, name, prefix, admin, created_at, revoked_at, expires_at, models = row
    allowed = loads(models)
    return KeyRow(id=id_, organization=organization, name=name, prefix=prefix,
                  admin=bool(admin), created_at=created_at, revoked_at=revoked_at,
                  expires_at=expires_at,
                  allowed_models=tuple(allowed) if allowed is not None else None)


class _NotAllNew(Exception):
    """The bulk insert met ids already stored: the batch is stored again row by row."""


@lru_cache(maxsize=256)
def _to_format_style(sql: str) -> str:
    return sql.replace("?", "%s")


class SQLStore:
    """Implements base.Store. Subclasses set `dialect` and `integrity_errors` and
    implement _transaction(), close(), and optionally _lock_migrations()."""

    dialect: Dialect
    integrity_errors: tuple[type[Exception], ...] = ()
    # What the driver raises for a value it cannot store (not an outage): a retry would
    # fail the same way.
    data_errors: tuple[type[Exception], ...] = (ValueError, OverflowError, TypeError)
    # Records the journal writer inserts per transaction at most (store/writer.py). SQLite
    # holds its one write lock for a whole transaction, and the shared state on the same
    # file waits 0.5 s for it before failing over: batches stay small there.
    writer_batch = 2000
    # A record's requests row, as this driver binds it best (_schema.record_to_row).
    _request_row = staticmethod(record_to_row)
    _body_row = staticmethod(body_row)   # a request_bodies row as _insert_bodies takes it
    # Rollup rows upserted in key order (_rollup_writer.maintain): two transactions
    # writing at once (PostgreSQL's pipeline) then lock the rows they share in the same
    # order and cannot deadlock.
    rollups_in_key_order = True

    # -- what a subclass provides -------------------------------------------------
    def _transaction(self, write: bool, wait_s: float | None = None
                     ) -> AbstractContextManager:
        """A cursor inside one transaction: committed on normal exit, rolled back on an
        exception. Writes must take the write lock up front (no read→write upgrade).
        `wait_s`: the longest wait for a connection (None: the store's default)."""
        raise NotImplementedError

    def _lock_migrations(self, cur) -> None:
        """Serialise concurrent migrate() calls (no-op when the transaction already does)."""

    def close(self) -> None:
        raise NotImplementedError

    # What the driver raises when the database is unreachable, locked or out of
    # connections: an outage to ride out, not a programming error.
    outage_errors: tuple[type[BaseException], ...] = ()

    # -- public transaction API (shared state, request-id checks) ------------------
    def transaction(self, write: bool = False, wait_s: float | None = None
                    ) -> AbstractContextManager:
        """A cursor inside one transaction (see _transaction). `wait_s` bounds how long
        getting a connection may take; the request path passes a short one so an
        unreachable database fails it fast instead of after the pool's long timeout."""
        return self._transaction(write, wait_s)

    def execute(self, cur, sql: str, params=()):
        """Run one "?"-placeholder statement on a transaction's cursor; returns it."""
        return self._execute(cur, sql, params)

    def executemany(self, cur, sql: str, rows) -> None:
        cur.executemany(self._sql(sql), rows)

    # -- plumbing -----------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.dialect.placeholder == "?" else _to_format_style(sql)

    def _execute(self, cur, sql: str, params=()):
        cur.execute(self._sql(sql), params)
        return cur

    # -- migrations ---------------------------------------------------------------
    def migrate(self, until: int | None = None) -> None:
        """Apply the MIGRATIONS steps not yet recorded in schema_migrations, all in one
        transaction under a lock, so concurrent callers apply each step exactly once.
        `until`: stop after that version (tests build an older database with it). A step
        may be a function of (store, cursor), for what SQL alone cannot say."""
        with self._transaction(write=True) as cur:
            self._lock_migrations(cur)
            self._execute(cur, SCHEMA_MIGRATIONS_DDL)
            applied = {row[0] for row in
                       self._execute(cur, "SELECT version FROM schema_migrations").fetchall()}
            for version, description, statements in MIGRATIONS:
                if version in applied:
                    continue
                if until is not None and version > until:
                    break
                for statement in statements:
                    if callable(statement):
                        statement(self, cur)
                        continue
                    if isinstance(statement, PerDialect):
                        statement = statement.for_dialect(self.dialect.name)
                    if statement:
                        self._execute(cur, statement.format(**self.dialect.types))
                self._execute(cur, "INSERT INTO schema_migrations"
                                   " (version, description, applied_at) VALUES (?, ?, ?)",
                              (version, description, utc_iso(time.time())))

    def schema_versions(self) -> list[int]:
        """Applied migration versions, ascending (migrations run when the store opens)."""
        with self._transaction(write=False) as cur:
            rows = self._execute(cur, "SELECT version FROM schema_migrations"
                                      " ORDER BY version").fetchall()
        return [row[0] for row in rows]

    # -- log records --------------------------------------------------------------
    def insert_records(self, records: list[dict]) -> None:
        if not records:
            return
        to_row = self._request_row
        rows = [to_row(rec) for rec in records]
        try:
            self._store_batch(records, rows, bulk=True)
        except _NotAllNew:
            self._store_batch(records, rows, bulk=False)

    def _store_batch(self, records: list[dict], rows: list[tuple], bulk: bool) -> None:
        """One transaction storing the batch. The fast path is one bulk insert, the
        transaction's first statement; when it stored fewer rows than it was given (a
        journal replay, an id already used, the same id twice in the batch) the whole
        transaction is undone (_NotAllNew) and the batch goes again row by row, to tell
        each case apart. No savepoint: on PostgreSQL one cost two more round trips a
        batch, and made every row's transaction id a subtransaction's."""
        with self._transaction(write=True) as cur:
            if not bulk:
                stored = self._insert_one_by_one(cur, records, rows)
            elif self._bulk_insert_new(cur, rows) == len(rows):
                stored = records
            else:
                raise _NotAllNew
            to_body_row = self._body_row
            self._insert_bodies(cur, [row for rec in stored
                                      if (row := to_body_row(rec)) is not None])
            props = [property_rows(rec) for rec in stored]   # the rollups use them too
            prop_rows = [row for rows in props for row in rows]
            if prop_rows:
                self._bulk_insert(cur, "request_properties", _PROPERTY_COLUMNS, prop_rows)
            # The rows' attempts JSON, when the rows are the stored records' (not after a
            # record moved to a fresh id): the rate-limit rollup searches that text.
            attempts = [row[_ATTEMPTS_AT] for row in rows] if stored is records else None
            self._after_insert(cur, stored, props, attempts)

    def _after_insert(self, cur, records: list[dict],
                      props: list[list[tuple]] | None = None,
                      attempts_json: list | None = None) -> None:
        """Runs in the insert's transaction with exactly the records this transaction
        stored (as stored: a moved record under its fresh id), so whatever is derived
        from them (rollup counters, the webhook feed) commits or rolls back with them. A
        journal replay of a record already stored is never passed again. `props`: each
        record's property_rows; `attempts_json`: each record's attempts_json column."""
        # Imported by the first insert: only the journal writer (and tests) insert, so a
        # serving worker, which opens a store to read keys and budgets, never loads the
        # writer-side modules (issue 15).
        from heliograph.store import _rollup_writer as rollups
        from heliograph.store._webhook_feed import feed_webhooks
        if records:
            rollups.maintain(self, cur, records, props)
            cache_entries.maintain(self, cur, records)
            ratelimit_rollup.maintain(self, cur, records, attempts_json)
        feed_webhooks(self, cur, records)

    def _insert_one_by_one(self, cur, records: list[dict], rows: list[tuple]
                           ) -> list[dict]:
        """A skipped record that is the stored one again (a journal replay) stays
        skipped; a different record that happened to get an id its organization already
        used (two workers accepting the same Helicone-Request-Id within the journal's
        delay) is stored under a fresh id, saying so, because no record is ever dropped."""
        stored = []
        for rec, row in zip(records, rows):
            if self._insert_request_row(cur, row):
                stored.append(rec)
                continue
            there = self._execute(cur, "SELECT created_at, key_id FROM requests"
                                       " WHERE organization = ? AND id = ?",
                                  (rec.get("organization") or "", rec["id"])).fetchone()
            if there is not None and tuple(there) == (rec["created_at"], rec.get("key_id")):
                continue  # already stored: a replay
            note = f"[request id {rec['id']} was already used; stored under a fresh id]"
            moved = dict(rec, id=str(uuid.uuid4()), requested_id=rec["id"],
                         error=f"{rec['error']} {note}" if rec.get("error") else note)
            self._insert_request_row(cur, self._request_row(moved))
            stored.append(moved)
        return stored

    def _insert_request_row(self, cur, row: tuple) -> bool:
        """Insert one requests row unless its organization already has its id; whether
        it was inserted."""
        return self._execute(cur, _INSERT_REQUEST, row).rowcount == 1

    def prepare_partitions(self, now: float | None = None) -> None:
        """Create the coming months' partitions (PostgreSQL; nothing to do elsewhere)."""

    def index_search(self, limit: int = 5000) -> int:
        """Add up to `limit` stored bodies to the text-search index (store/search.py);
        the number added (0: none waits)."""
        raise NotImplementedError

    def _delete_bodies(self, cur, organization: str, request_ids: list[str]) -> None:
        """Delete these records' bodies, and take them out of the search index."""
        raise NotImplementedError

    # -- retention ----------------------------------------------------------------
    def purge(self, records_before: str | None, bodies_before: str | None,
              batch: int = 2000) -> int:
        """One batch of retention (see base.Store.purge), in short transactions of its
        own so the writer is never held up for long. Rollup tables are never touched."""
        deleted = 0
        if records_before:
            with self._transaction(write=True) as cur:
                for organization in self._organizations(cur):
                    ids = [row[0] for row in self._execute(
                        cur, "SELECT id FROM requests WHERE organization = ?"
                             " AND created_at < ? ORDER BY created_at LIMIT ?",
                        (organization, records_before, batch - deleted)).fetchall()]
                    self._delete_records(cur, organization, ids)
                    deleted += len(ids)
                    if deleted >= batch:
                        return deleted
        if bodies_before:
            with self._transaction(write=True) as cur:
                rows = self._execute(cur, "SELECT organization, request_id FROM request_bodies"
                                          " WHERE created_at < ? ORDER BY created_at LIMIT ?",
                                     (bodies_before, batch - deleted)).fetchall()
                by_org: dict[str, list[str]] = {}
                for organization, request_id in rows:
                    by_org.setdefault(organization, []).append(request_id)
                for organization, ids in by_org.items():
                    for chunk in _chunks(ids):
                        self._delete_bodies(cur, organization, chunk)
                deleted += len(rows)
        return deleted

    def _organizations(self, cur) -> list[str]:
        """Every organization with records, by skipping through the listing index (one
        lookup per organization, not a scan of the table)."""
        found: list[str] = []
        row = self._execute(cur, "SELECT MIN(organization) FROM requests").fetchone()
        while row is not None and row[0] is not None:
            found.append(row[0])
            row = self._execute(cur, "SELECT MIN(organization) FROM requests"
                                     " WHERE organization > ?", (row[0],)).fetchone()
        return found

    def _delete_records(self, cur, organization: str, ids: list[str]) -> None:
        for chunk in _chunks(ids):
            marks = ", ".join("?" * len(chunk))
            self._delete_bodies(cur, organization, chunk)
            for table, column in (("request_properties", "request_id"), ("requests", "id")):
                self._execute(cur, f"DELETE FROM {table} WHERE organization = ?"
                                   f" AND {column} IN ({marks})", (organization, *chunk))

    # -- bulk writes (PostgresStore overrides these with COPY) ---------------------
    def _bulk_insert_new(self, cur, rows: list[tuple]) -> int:
        """Insert requests rows, skipping ids already stored; the number inserted."""
        cur.executemany(self._sql(_INSERT_REQUEST), rows)
        return cur.rowcount

    def _bulk_insert(self, cur, table: str, columns: tuple[str, ...],
                     rows: list[tuple]) -> None:
        """Insert rows known to be new (they belong to requests rows inserted just now)."""
        marks = ", ".join("?" * len(columns))
        cur.executemany(self._sql(f"INSERT INTO {table} ({', '.join(columns)})"
                                  f" VALUES ({marks})"), rows)

    def _merge_rows(self, cur, table: str, columns: list[str], keys: dict[str, str],
                    rows: list[tuple], updates: str) -> None:
        """Upsert rows (new keys inserted, existing ones updated by `updates`, the ON
        CONFLICT … DO UPDATE SET list); rows have distinct keys (in key order where
        rollups_in_key_order says so). One single-row statement run over every row:
        SQLite prepares it once and steps it per row (a VALUES list of 400 rows, ~26,000
        parameters parsed per chunk, cost more)."""
        self.executemany(cur, f"INSERT INTO {table} ({', '.join(columns)})"
                              f" VALUES ({', '.join('?' * len(columns))})"
                              f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                         rows)

    def _merge_rollups(self, cur, merges: list[tuple]) -> None:
        """Upsert each rollup table's delta rows: merges are (RollupTable, rows in key
        order, its ON CONFLICT update list), in a fixed table order."""
        for table, rows, updates in merges:
            self._merge_rows(cur, table.name, table.columns(), table.keys, rows, updates)

    def _insert_bodies(self, cur, rows: list[tuple]) -> None:
        """Bodies rows (BODY_TABLE_COLUMNS), and whatever their search index needs."""
        if rows:
            self._bulk_insert(cur, "request_bodies", BODY_TABLE_COLUMNS, rows)

    def request_id_used(self, organization: str, request_id: str,
                        wait_s: float | None = None) -> bool:
        """Whether this organization already has a record with this id."""
        with self._transaction(write=False, wait_s=wait_s) as cur:
            return self._execute(cur, "SELECT 1 FROM requests WHERE organization = ?"
                                      " AND id = ?", (organization, request_id)
                                 ).fetchone() is not None

    # -- feedback -----------------------------------------------------------------
    def set_feedback(self, organization: str, request_id: str, rating: bool) -> bool:
        with self._transaction(write=True) as cur:
            self._execute(cur, "UPDATE requests SET feedback = ?"
                               " WHERE organization = ? AND id = ?",
                          (bool(rating), organization, request_id))
            return cur.rowcount > 0

    def set_score(self, organization: str, request_id: str, scores: dict) -> bool:
        """Merge scores into the record's (new names added, same names replaced)."""
        if not isinstance(scores, dict):
            raise ValueError("scores must be an object of name → value")
        with self._transaction(write=True) as cur:
            row = self._execute(cur, "SELECT scores_json FROM requests"
                                     " WHERE organization = ? AND id = ?"
                                     + self.dialect.lock_rows,
                                (organization, request_id)).fetchone()
            if row is None:
                return False
            merged = merge_scores(loads(row[0]), scores)  # bounded: a 400 past the limit
            self._execute(cur, "UPDATE requests SET scores_json = ?"
                               " WHERE organization = ? AND id = ?",
                          (dumps(merged), organization, request_id))
            return True

    # -- gateway keys -------------------------------------------------------------
    def create_key(self, key_hash: str, prefix: str, name: str, organization: str,
                   admin: bool, expires_at: str | None = None,
                   allowed_models: tuple[str, ...] | None = None) -> KeyRow:
        # Imported here: hashlib's OpenSSL is ~3.5 MB the background host need not load.
        import secrets
        key = KeyRow(id="key_" + secrets.token_hex(6), organization=organization,
                     name=name, prefix=prefix, admin=bool(admin),
                     created_at=utc_iso(time.time()), expires_at=expires_at,
                     allowed_models=tuple(allowed_models) if allowed_models is not None
                     else None)
        models_json = dumps(list(key.allowed_models)) if key.allowed_models is not None \
            else None
        try:
            with self._transaction(write=True) as cur:
                self._execute(cur, "INSERT INTO api_keys (id, key_hash, prefix, name,"
                                   " organization, admin, created_at, expires_at,"
                                   " allowed_models_json)"
                                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (key.id, key_hash, prefix, name, organization, key.admin,
                               key.created_at, expires_at, models_json))
        except self.integrity_errors:
            raise ValueError("a key with this hash already exists") from None
        return key

    def find_key(self, key_hash: str, wait_s: float | None = None) -> KeyRow | None:
        with self._transaction(write=False, wait_s=wait_s) as cur:
            row = self._execute(cur, f"SELECT {_KEY_COLUMNS} FROM api_keys"
                                     " WHERE key_hash = ? AND revoked_at IS NULL",
                                (key_hash,)).fetchone()
        return _key_row(row) if row else None

    def list_keys(self, organization: str | None = None) -> list[KeyRow]:
        """Revoked keys included (revoked_at set), oldest first."""
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys"
        params: tuple = ()
        if organization is not None:
            sql += " WHERE organization = ?"
            params = (organization,)
        with self._transaction(write=False) as cur:
            rows = self._execute(cur, sql + " ORDER BY created_at, id", params).fetchall()
        return [_key_row(row) for row in rows]

    def get_key(self, key_id: str, organization: str | None = None) -> KeyRow | None:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?"
        params: tuple = (key_id,)
        if organization is not None:
            sql += " AND organization = ?"
            params += (organization,)
        with self._transaction(write=False) as cur:
            row = self._execute(cur, sql, params).fetchone()
        return _key_row(row) if row else None

    def revoke_key(self, key_id: str, organization: str | None = None) -> bool:
        """True if a live key with this id (in that organization) was revoked now;
        False for an unknown or already revoked key."""
        sql = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        params: tuple = (utc_iso(time.time()), key_id)
        if organization is not None:
            sql += " AND organization = ?"
            params += (organization,)
        with self._transaction(write=True) as cur:
            self._execute(cur, sql, params)
            return cur.rowcount > 0

    def count_keys(self) -> int:
        """Live (not revoked) keys across all organizations."""
        with self._transaction(write=False) as cur:
            return self._execute(cur, "SELECT COUNT(*) FROM api_keys"
                                      " WHERE revoked_at IS NULL").fetchone()[0]
