"""PostgreSQL: a batch's rollup deltas (store/_rollup_writer.py) for every table at once.

Each round trip to the server costs the writer twice (the client waits, then the server
wakes up), and on a busy machine more than the work itself: merging table by table took
4 per table (create the staging table if needed, COPY into it — two —, INSERT … SELECT …
ON CONFLICT), 44 per batch. Here every table's delta rows go into one staging table (the
union of the rollup tables' columns, `tbl` telling the tables apart, created once per
connection) by one COPY, and one statement merges them all, an INSERT … ON CONFLICT per
table in data-modifying CTEs: 3 round trips per batch. Still in the insert's
transaction, so the counts commit or roll back with it.
"""

from __future__ import annotations

from functools import cache, lru_cache
from operator import itemgetter

from heliograph.store._rollups import TABLES, RollupTable, column_type

STAGING = "rollup_incoming"


def _union_columns() -> dict[str, str]:
    """Every rollup column, once, with its type (a NULL where a table has no such
    column, hence no NOT NULL)."""
    columns: dict[str, str] = {}
    for table in TABLES:
        for column in table.columns():
            type_ = column_type(column, table).replace(" NOT NULL", "")
            if columns.setdefault(column, type_) != type_:
                raise TypeError(f"rollup column {column} is {columns[column]} in one table"
                                f" and {type_} in {table.name}: the staging table holds one"
                                " type per column name")
    return columns


_COLUMNS = _union_columns()
_TABLE_IDS = {table.name: i for i, table in enumerate(TABLES)}


def staging_ddl(types: dict[str, str]) -> str:
    columns = ", ".join(f"{name} {type_.format(**types)}" for name, type_ in _COLUMNS.items())
    return (f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (tbl INTEGER NOT NULL, {columns})"
            " ON COMMIT DELETE ROWS")


COPY_SQL = f"COPY {STAGING} (tbl, {', '.join(_COLUMNS)}) FROM STDIN"
# The same in binary, with each column's type: ~52 numbers a record (a wide row per group
# and table, ~0.9 groups a record on a live batch) that text format has the writer print
# and the server parse back.
COPY_BINARY_SQL = COPY_SQL + " (FORMAT BINARY)"
_BINARY_TYPES = {"INTEGER": "int4", "{bigint}": "int8", "{float}": "float8",
                 "TEXT": "text", "{sortable_text}": "text"}
COPY_TYPES = ["int4", *(_BINARY_TYPES[type_] for type_ in _COLUMNS.values())]


@cache
def _spreader(name: str):
    """A table's delta row → its staging row (tbl, then every union column), by one
    itemgetter over the row followed by (None, tbl)."""
    table = TABLES[_TABLE_IDS[name]]
    own = {column: i for i, column in enumerate(table.columns())}
    width = len(own)
    get = itemgetter(width + 1, *(own.get(column, width) for column in _COLUMNS))
    pad = (None, _TABLE_IDS[name])
    return lambda row: get(row + pad)


def staging_rows(merges: list[tuple[RollupTable, list[tuple], str]]):
    for table, rows, _updates in merges:
        spread = _spreader(table.name)
        for row in rows:
            yield spread(row)


@lru_cache(maxsize=64)
def merge_sql(tables: tuple[tuple[str, str], ...]) -> str:
    """One statement upserting the staged rows of these (table name, update list) pairs,
    each table's rows in key order (concurrent writers lock them in the same order)."""
    parts = []
    for i, (name, updates) in enumerate(tables):
        table = TABLES[_TABLE_IDS[name]]
        columns = ", ".join(table.columns())
        keys = ", ".join(table.keys)
        parts.append(f"m{i} AS (INSERT INTO {name} ({columns}) SELECT {columns}"
                     f" FROM {STAGING} WHERE tbl = {_TABLE_IDS[name]} ORDER BY {keys}"
                     f" ON CONFLICT ({keys}) DO UPDATE SET {updates})")
    return f"WITH {', '.join(parts)} SELECT 1"
