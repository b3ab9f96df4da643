"""PostgreSQL's monthly partitions of the two big tables, `requests` and `request_bodies`
(issue #16: old data goes by dropping a month, not by deleting its rows one by one).

Layout (migration 12, `convert`):
  - each table is partitioned by RANGE (created_at), one partition per calendar month
    (`requests_p202612` holds created_at in ['2026-12', '2027-01'): created_at is UTC ISO
    text, so a month is a range of text);
  - `<table>_plegacy`: the table as it was before the migration, attached in place as the
    partition of everything before the month after the migration (no row is copied: the
    conversion costs a scan of the table, not a rewrite), dropped whole like any month
    once all of it is past the retention cut-off (a new, empty database has none);
  - `<table>_pdefault`: whatever no month holds (a created_at that is not a date), so no
    insert can ever fail for want of a partition;
  - a partitioned table's unique keys must contain the partition key, so (organization,
    id) cannot be the key of `requests` any more: `request_ids` (not partitioned, two
    columns) keeps a record id unique within its organization, and each partition keeps
    its own unique (organization, id) index for lookups by id.
Months are created ahead by the planner-stats job (`prepare`) and on demand by the
writer for a batch whose month has none yet (`ensure`): the demo fills 30 days back, a
client may log a record from last year. Retention (`drop_before`) detaches and drops
whole months; the rows of the month straddling the cut-off are deleted in batches as
before (store/_sql.py purge).
"""

from __future__ import annotations

import datetime as dt
import re
import time

import psycopg

# The partitioned tables and the column naming a record within its organization.
TABLES: dict[str, str] = {"requests": "id", "request_bodies": "request_id"}
# Arbitrary constant naming "heliograph partition DDL" among advisory locks.
_LOCK_ID = 0x68656C696F70
# Months created ahead of the current one.
MONTHS_AHEAD = 2
# How long a DETACH may wait for the lock on the table (it needs it exclusively for a
# moment): readers and the writer queue behind a waiting DETACH, so it gives up soon, and
# does not try again for a while (a long report holding the table would otherwise stall
# the writer on every retention run). Meanwhile the rows go in batches.
DETACH_LOCK_TIMEOUT = "500ms"
DETACH_RETRY_S = 60.0
# A bodies row up to this many bytes stays whole in its page (the partitions'
# toast_tuple_target; PostgreSQL's default is ~2 KB). Over ~2 KB a row was compressed and,
# when still over 2 KB (a fifth of a demo batch's rows), cut into chunks stored in the
# TOAST table and its index: two more inserts a chunk, in every batch. Kept whole, the
# writer's batch cost the server ~7% less CPU (bench/README.md "Writer throughput") for
# ~6% more bytes of bodies (lz4 saved little on 2-4 KB of JSON). Larger rows are still
# compressed, and moved out when still over this.
BODIES_TOAST_TARGET = 4000
# Storage parameters of each table's partitions (a partitioned table holds none itself,
# and CREATE TABLE … LIKE copies none).
PARTITION_OPTIONS: dict[str, str] = {
    "request_bodies": f"toast_tuple_target = {BODIES_TOAST_TARGET}"}
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_RANGE = re.compile(r"FOR VALUES FROM \((.+)\) TO \((.+)\)")


def month_of(created_at) -> str | None:
    """'2026-12' for '2026-12-03T09:00:00Z'; None for text that is not a date."""
    if isinstance(created_at, str) and _MONTH.fullmatch(created_at[:7]):
        return created_at[:7]
    return None


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def current_month(now: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if now is None else now,
                                     dt.UTC).strftime("%Y-%m")


def partition_name(table: str, month: str) -> str:
    return f"{table}_p{month.replace('-', '')}"


def _bound(text: str) -> str | None:
    """A partition bound as pg_get_expr prints it: 'x' → x; MINVALUE/MAXVALUE → None."""
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return text[1:-1].replace("''", "'").split("'::")[0]


def attached(cur, table: str) -> list[tuple[str, str | None, str | None]]:
    """(name, from, to) of each month-like partition of `table` (from/to None: unbounded);
    the default partition is left out."""
    rows = cur.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (table,)).fetchall()
    found = []
    for name, bound in rows:
        match = _RANGE.fullmatch(bound)
        if match:
            found.append((name, _bound(match.group(1)), _bound(match.group(2))))
    return found


def _covered(ranges: list[tuple[str, str | None, str | None]], month: str) -> bool:
    return any((lo is None or lo <= month) and (hi is None or month < hi)
               for _name, lo, hi in ranges)


_INDEX_DDL = re.compile(r"CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?\S+ USING")


def build(cur, table: str, name: str) -> None:
    """A table shaped as a partition of `table`, not attached yet: its columns, the
    table's indexes (named `<index>_<suffix>`, so a plan names the index whatever the
    month: requests_org_created_p202612), and its own unique key on the record's id."""
    suffix = name[len(table) + 1:]
    options = PARTITION_OPTIONS.get(table)
    cur.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING STORAGE"
                " INCLUDING COMPRESSION)" + (f" WITH ({options})" if options else ""))
    for (definition,) in cur.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
            (table,)).fetchall():
        cur.execute(_INDEX_DDL.sub(
            lambda m: f"CREATE {m.group(1) or ''}INDEX {m.group(2)}_{suffix} ON {name} USING",
            definition, count=1))
    cur.execute(f"CREATE UNIQUE INDEX {name}_key ON {name} (organization, {TABLES[table]})")


def create_month(cur, table: str, month: str) -> None:
    """Attach a partition for `month`. Built apart and attached (ATTACH locks the table
    less than CREATE … PARTITION OF); rows of that month in the default partition move in
    first, or the attach would fail."""
    name, upper = partition_name(table, month), next_month(month)
    build(cur, table, name)
    cur.execute(f"WITH moved AS (DELETE FROM {table}_pdefault WHERE created_at >= %s"
                f" AND created_at < %s RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                (month, upper))
    cur.execute(f"ALTER TABLE {table} ATTACH PARTITION {name}"
                f" FOR VALUES FROM ('{month}') TO ('{upper}')")


class Partitions:
    """The partitions one PostgresStore knows of (cached: the writer asks per batch)."""

    def __init__(self) -> None:
        self._ranges: dict[str, list[tuple[str, str | None, str | None]]] = {}
        # Detached tables being emptied of their dependents: the last key done.
        self._cleanup_after: dict[str, list] = {}
        self._detach_not_before = 0.0  # time.monotonic(): a DETACH found the table busy

    def forget(self) -> None:
        self._ranges = {}

    def missing(self, months: set[str]) -> set[str]:
        """Of these months, those some partitioned table has no partition for, as far as
        this process knows (an empty cache knows nothing)."""
        known = self._ranges   # replaced whole, never changed in place (see ensure)
        if not known:
            return set(months)
        return {m for m in months
                if not all(_covered(ranges, m) for ranges in known.values())}

    def ensure(self, cur, months: set[str]) -> None:
        """Create the partitions these months lack, under a lock so two writers cannot
        both create one; commits with the caller's transaction."""
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        # Built apart and swapped in at the end: the journal writer's other thread may be
        # reading the cache (missing) meanwhile.
        known = dict(self._ranges)
        for table in TABLES:
            ranges = attached(cur, table)
            for month in sorted(months):
                if not _covered(ranges, month):
                    create_month(cur, table, month)
                    ranges.append((partition_name(table, month), month, next_month(month)))
            known[table] = ranges
        self._ranges = known

    # -- retention ------------------------------------------------------------------
    def detach_before(self, cur, tables: tuple[str, ...], before: str) -> bool:
        """Detach one partition of these tables lying wholly before `before`; False when
        there is none, or when the table stayed busy for DETACH_LOCK_TIMEOUT (the rows
        then go in batches, or on a later run)."""
        if time.monotonic() < self._detach_not_before:
            return False
        for table in tables:
            for name, _lo, hi in attached(cur, table):
                if hi is not None and hi <= before:
                    cur.execute("SAVEPOINT detach")
                    try:
                        cur.execute(f"SET LOCAL lock_timeout = '{DETACH_LOCK_TIMEOUT}'")
                        cur.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
                        cur.execute("SET LOCAL lock_timeout = 0")
                    except psycopg.errors.LockNotAvailable:
                        cur.execute("ROLLBACK TO SAVEPOINT detach")
                        self._detach_not_before = time.monotonic() + DETACH_RETRY_S
                        return False
                    cur.execute("RELEASE SAVEPOINT detach")
                    self._ranges = {}
                    return True
        return False

    def detached(self, cur) -> list[tuple[str, str]]:
        """(table, name) of the partitions detached by retention and not yet dropped (a
        crash between the two leaves them; they are found again by name)."""
        found = []
        for table in TABLES:
            rows = cur.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
                " AND relkind = 'r' AND NOT relispartition AND relname LIKE %s ORDER BY relname",
                (table.replace("_", r"\_") + r"\_p%",)).fetchall()
            found += [(table, name) for (name,) in rows if name != f"{table}_pdefault"]
        return found

    def next_keys(self, cur, table: str, name: str, batch: int) -> list[tuple[str, str]]:
        """The next batch of (organization, id) of a detached partition, in key order from
        where the previous batch ended (progress kept in memory: after a restart it starts
        over, and deleting dependents already gone is harmless)."""
        key = TABLES[table]
        after = self._cleanup_after.get(name)
        where, params = "", [batch]
        if after is not None:
            where = f" WHERE (organization, {key}) > (%s, %s)"
            params = [*after, batch]
        keys = cur.execute(f"SELECT organization, {key} FROM {name}{where}"
                           f" ORDER BY organization, {key} LIMIT %s", params).fetchall()
        if keys:
            self._cleanup_after[name] = list(keys[-1])
        return keys

    def drop(self, cur, name: str) -> None:
        cur.execute(f"DROP TABLE {name}")
        self._cleanup_after.pop(name, None)


# -- migration 12 ------------------------------------------------------------------------
def convert(cur, now: float | None = None) -> None:
    """Partition `requests` and `request_bodies` by month in place (see the module's
    docstring), and fill `request_ids` from the records there are."""
    bound = next_month(current_month(now))
    for table in TABLES:
        legacy = f"{table}_plegacy"
        indexes = cur.execute(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisprimary FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            (table,)).fetchall()
        cur.execute(f"ALTER TABLE {table} RENAME TO {legacy}")
        for name, _definition, primary in indexes:
            cur.execute(f"ALTER INDEX {name} RENAME TO "
                        + (f"{legacy}_key" if primary else f"{name}_plegacy"))
        cur.execute(f"CREATE TABLE {table} (LIKE {legacy} INCLUDING DEFAULTS"
                    " INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (created_at)")
        # The same indexes on the partitioned table (each legacy index is attached to its
        # twin, not rebuilt), but for the old primary key, which stays the legacy
        # partition's own unique index as it will be every month's.
        for _name, definition, primary in indexes:
            if not primary:
                cur.execute(definition)
        build(cur, table, f"{table}_pdefault")
        cur.execute(f"ALTER TABLE {table} ATTACH PARTITION {table}_pdefault DEFAULT")
        if cur.execute(f"SELECT 1 FROM {legacy} LIMIT 1").fetchone() is None:
            # A new database: every month will have its own partition.
            cur.execute(f"DROP TABLE {legacy}")
            continue
        # Rows dated after the legacy partition's range (a clock ahead) wait in the default
        # partition until their month is created.
        cur.execute(f"WITH moved AS (DELETE FROM {legacy} WHERE created_at >= %s RETURNING *)"
                    f" INSERT INTO {table} SELECT * FROM moved", (bound,))
        cur.execute(f"ALTER TABLE {table} ATTACH PARTITION {legacy}"
                    f" FOR VALUES FROM (MINVALUE) TO ('{bound}')")
    # Rows moved to the default partition above get their months now.
    ahead = {month_of(row[0]) for table in TABLES for row in cur.execute(
        f"SELECT DISTINCT created_at FROM {table}_pdefault").fetchall()}
    Partitions().ensure(cur, {month for month in ahead if month})
    # Filled before its key exists: one sorted index build instead of 1M inserts into it.
    cur.execute('CREATE TABLE request_ids (organization TEXT NOT NULL,'
                ' id TEXT COLLATE "C" NOT NULL)')
    cur.execute("INSERT INTO request_ids (organization, id) SELECT organization, id"
                " FROM requests")
    cur.execute("ALTER TABLE request_ids ADD PRIMARY KEY (organization, id)")


# -- migration 16 ------------------------------------------------------------------------
def set_partition_options(cur) -> None:
    """PARTITION_OPTIONS on the partitions there are (those made later get them from
    `build`); rows already stored stay as they are."""
    for table, options in PARTITION_OPTIONS.items():
        for (name,) in cur.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass", (table,)).fetchall():
            cur.execute(f"ALTER TABLE {name} SET ({options})")
