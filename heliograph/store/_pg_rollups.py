"""PostgreSQL: a batch's rollup deltas (store/_rollup_writer.py) for every table at once.

Each round trip to the server costs the writer twice (the client waits, then the server
wakes up), and on a busy machine more than the work itself: merging table by table took
4 per table (create the staging table if needed, COPY into it — two —, INSERT … SELECT …
ON CONFLICT), 44 per batch. Here the delta rows go into staging tables (the union of
their tables' columns, `tbl` telling the tables apart, created once per connection), a
COPY each, and one statement merges them all, an INSERT … ON CONFLICT per table in
data-modifying CTEs: 5 round trips per batch (a COPY takes two). Still in the insert's
transaction, so the counts commit or roll back with it.

Two staging tables, by shape: the tables with a latency histogram (61–66 columns) and
those without (7–21). In one union table of 73 columns every narrow row (the user ×
model and session rows, ~5 of a live batch's ~6 delta rows) was padded with ~55 NULLs:
two thirds of the fields the writer encoded and the server parsed, stored and scanned 14
times were those NULLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from operator import itemgetter

from heliograph.store._rollups import TABLES, RollupTable, column_type

_TABLE_IDS = {table.name: i for i, table in enumerate(TABLES)}
_BINARY_TYPES = {"INTEGER": "int4", "{bigint}": "int8", "{float}": "float8",
                 "TEXT": "text", "{sortable_text}": "text"}


@dataclass(frozen=True)
class Staging:
    """A temporary table holding the delta rows of the rollup tables of one shape."""
    name: str
    tables: tuple[RollupTable, ...]
    columns: dict[str, str]   # every column of its tables, once, with its type

    def ddl(self, types: dict[str, str]) -> str:
        columns = ", ".join(f"{name} {type_.format(**types)}"
                            for name, type_ in self.columns.items())
        return (f"CREATE TEMP TABLE IF NOT EXISTS {self.name} (tbl INTEGER NOT NULL,"
                f" {columns}) ON COMMIT DELETE ROWS")

    @property
    def copy_sql(self) -> str:
        return f"COPY {self.name} (tbl, {', '.join(self.columns)}) FROM STDIN"

    # The same in binary, with each column's type: ~50 numbers a record that text format
    # has the writer print and the server parse back.
    @property
    def copy_binary_sql(self) -> str:
        return self.copy_sql + " (FORMAT BINARY)"

    @property
    def copy_types(self) -> list[str]:
        return ["int4", *(_BINARY_TYPES[type_] for type_ in self.columns.values())]


def _staging(name: str, tables: list[RollupTable]) -> Staging:
    """The union of these tables' columns (a NULL where a table has no such column,
    hence no NOT NULL)."""
    columns: dict[str, str] = {}
    for table in tables:
        for column in table.columns():
            type_ = column_type(column, table).replace(" NOT NULL", "")
            if columns.setdefault(column, type_) != type_:
                raise TypeError(f"rollup column {column} is {columns[column]} in one table"
                                f" and {type_} in {table.name}: a staging table holds one"
                                " type per column name")
    return Staging(name, tuple(tables), columns)


STAGINGS = (
    _staging("rollup_incoming", [t for t in TABLES if t.histogram]),
    _staging("rollup_incoming_narrow", [t for t in TABLES if not t.histogram]),
)
_STAGING_OF = {table.name: staging for staging in STAGINGS for table in staging.tables}


def staging_ddl(types: dict[str, str]) -> list[str]:
    return [staging.ddl(types) for staging in STAGINGS]


@cache
def _spreader(name: str):
    """A table's delta row → its staging row (tbl, then every column of its staging
    table), by one itemgetter over the row followed by (None, tbl)."""
    table = TABLES[_TABLE_IDS[name]]
    own = {column: i for i, column in enumerate(table.columns())}
    width = len(own)
    get = itemgetter(width + 1, *(own.get(column, width)
                                  for column in _STAGING_OF[name].columns))
    pad = (None, _TABLE_IDS[name])
    return lambda row: get(row + pad)


def staged(merges: list[tuple[RollupTable, list[tuple], str]]
           ) -> list[tuple[Staging, list[tuple]]]:
    """(staging table, its rows) for each staging table some of these deltas go to."""
    out: dict[str, tuple[Staging, list[tuple]]] = {}
    for table, rows, _updates in merges:
        staging = _STAGING_OF[table.name]
        if staging.name not in out:
            out[staging.name] = (staging, [])
        out[staging.name][1].extend(map(_spreader(table.name), rows))
    return list(out.values())


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
                     f" FROM {_STAGING_OF[name].name} WHERE tbl = {_TABLE_IDS[name]}"
                     f" ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates})")
    return f"WITH {', '.join(parts)} SELECT 1"
