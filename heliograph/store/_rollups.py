"""Rollups: pre-aggregated counters over the log, kept in step with `requests` by the writer.

Issue #16: aggregates over millions of rows took seconds; the read side now sums a few
thousand rollup rows instead. Every counter is additive (sums, and a latency histogram
whose bin counts add up), so any window is a sum of buckets and a group left out of a
table (records without a user, say) is the total minus the groups that are there.

Tables (all keyed by organization first):
  rollup_hourly_totals / _daily_totals bucket
  rollup_hourly / rollup_daily        bucket × model × provider × status × cache × key_id
  rollup_property_hourly / _daily     bucket × property name × value
  rollup_user_hourly / _daily         bucket × user_id (hourly since migration 9)
  rollup_users, rollup_user_models    all time, per user (and per user and model)
  rollup_user_model_hourly / _daily   user_id × bucket × model (migration 10)
  rollup_user_dekad                   bucket (a third of a month) × user_id (migration 10)
  rollup_sessions                     all time, per session (first/last seen, its name)
  rollup_ratelimit_hourly             bucket × provider × model: 429s and the latest
                                      rate-limit report (its own module,
                                      _ratelimit_rollup.py: not counters of this shape)

Text dimensions store NULL as '' and status as 0, because NULLs never conflict in a
primary key (SQLite has no NULLS NOT DISTINCT); readers map them back.

Migration 6 fills the tables by SQL from the rows already stored (fill_sql); after that the
writer adds each batch's counts in the insert's transaction (_rollup_writer.py), so a
crash loses or keeps both. The read side sums raw rows with the same SQL expressions
(raw_groups_sql) where no rollup answers, so both paths count alike.
"""

from __future__ import annotations

from dataclasses import dataclass

# Latency histogram: bin 0 is below 1 ms, bin i (1..41) is [2^((i-1)/2), 2^(i/2)) ms,
# bin 42 is 2^20.5 ms (~25 min) and above. A bin spans a factor of √2, so a percentile
# read from it (interpolated inside the bin, clamped to the group's min/max) is within
# ~20% of the exact one, and exact for the largest value of a group.
LATENCY_BOUNDS: tuple[float, ...] = tuple(2.0 ** (i / 2) for i in range(42))
HISTOGRAM_COLUMNS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BOUNDS) + 1))

# Additive counters, each with the SQL computing it over raw rows `r`.
SUM_COLUMNS: dict[str, str] = {
    "requests": "COUNT(*)",
    "errors": "SUM(CASE WHEN r.status >= 400 THEN 1 ELSE 0 END)",
    "cache_hits": "SUM(CASE WHEN r.cache = 'hit' THEN 1 ELSE 0 END)",
    # An unpriced request (cost_known false) is counted apart, never as free.
    "cost_usd": "SUM(CASE WHEN r.cost_known AND r.cost_usd IS NOT NULL"
                " THEN r.cost_usd ELSE 0 END)",
    "cost_unknown": "SUM(CASE WHEN r.cost_known THEN 0 ELSE 1 END)",
    "cost_saved_usd": "SUM(COALESCE(r.cost_saved_usd, 0))",
    "prompt_tokens": "SUM(COALESCE(r.prompt_tokens, 0))",
    "completion_tokens": "SUM(COALESCE(r.completion_tokens, 0))",
    # As the session tree counts them: prompt + completion when no total was reported.
    "total_tokens": "SUM(COALESCE(r.total_tokens, COALESCE(r.prompt_tokens, 0)"
                    " + COALESCE(r.completion_tokens, 0)))",
    "cached_tokens": "SUM(COALESCE(r.cached_tokens, 0))",
    "cache_write_tokens": "SUM(COALESCE(r.cache_write_tokens, 0))",
    "reasoning_tokens": "SUM(COALESCE(r.reasoning_tokens, 0))",
    "latency_sum": "SUM(COALESCE(r.latency_ms, 0))",
    "latency_count": "COUNT(r.latency_ms)",
}
FLOAT_SUMS = frozenset({"cost_usd", "cost_saved_usd", "latency_sum"})
# Kept as the smallest / largest value seen.
MIN_MAX_COLUMNS: dict[str, tuple[str, str]] = {
    "latency_min": ("MIN", "r.latency_ms"),
    "latency_max": ("MAX", "r.latency_ms"),
}


def latency_bin_sql(column: str = "r.latency_ms") -> str:
    """A CASE expression giving the histogram bin of `column` (NULL for NULL), written as
    a binary search so each row costs ~6 comparisons rather than 42."""
    def between(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        return (f"CASE WHEN {column} < {LATENCY_BOUNDS[mid]!r} THEN {between(lo, mid)}"
                f" ELSE {between(mid + 1, hi)} END")
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {between(0, len(LATENCY_BOUNDS))} END"


def raw_groups_sql(keys: dict[str, str], source: str, where: str) -> str:
    """SQL aggregating raw rows into (keys..., lat_bin, SUM_COLUMNS..., latency_min,
    latency_max) groups: one row per group and latency bin. `source` is the FROM clause
    (requests aliased r, maybe joined), `keys` output name → expression."""
    key_select = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
    sums = ", ".join(f"{expr} AS {name}" for name, expr in SUM_COLUMNS.items())
    extremes = ", ".join(f"{fn}({expr}) AS {name}"
                         for name, (fn, expr) in MIN_MAX_COLUMNS.items())
    group = ", ".join([*keys, "lat_bin"])
    return (f"SELECT {key_select + ', ' if keys else ''}{latency_bin_sql()} AS lat_bin,"
            f" {sums}, {extremes} FROM {source} WHERE {where} GROUP BY {group}")


@dataclass(frozen=True)
class RollupTable:
    name: str
    keys: dict[str, str]          # column → expression over requests r (and properties p)
    source: str = "requests r"
    where: str = "TRUE"           # which rows the table counts
    histogram: bool = True
    # Extra columns: name → (type, aggregate over r, merge: "min" | "max" | "sum")
    extras: tuple[tuple[str, str, str, str], ...] = ()
    # Only these of SUM_COLUMNS, without latency_min/max (None: all, with them): a
    # narrow table for a breakdown that shows a few numbers.
    counters: tuple[str, ...] | None = None

    def sums(self) -> tuple[str, ...]:
        return tuple(SUM_COLUMNS) if self.counters is None else self.counters

    def columns(self) -> list[str]:
        cols = [*self.keys, *self.sums()]
        if self.counters is None:
            cols += MIN_MAX_COLUMNS
        if self.histogram:
            cols += HISTOGRAM_COLUMNS
        return cols + [name for name, *_ in self.extras]


def _text(expr: str) -> str:
    return f"COALESCE({expr}, '')"


_MAIN_KEYS = {"model": _text("r.model"), "provider": _text("r.provider"),
              "status": "COALESCE(r.status, 0)", "cache": _text("r.cache"),
              "key_id": _text("r.key_id")}
_PROPERTY_SOURCE = ("requests r JOIN request_properties p"
                    " ON p.organization = r.organization AND p.request_id = r.id")
_PROPERTY_KEYS = {"name": "p.name", "value": "p.value"}
_SEEN = (("first_at", "{sortable_text}", "MIN(r.created_at)", "min"),
         ("last_at", "{sortable_text}", "MAX(r.created_at)", "max"))


def _hour(expr: str = "r.created_at") -> str:
    return f"SUBSTR({expr}, 1, 13)"   # 'YYYY-MM-DDTHH'


def _day(expr: str = "r.created_at") -> str:
    return f"SUBSTR({expr}, 1, 10)"   # 'YYYY-MM-DD'


# The tables of migration 6 (which creates and fills exactly these).
TABLES_V6: tuple[RollupTable, ...] = (
    # Per organization and time only: what an unfiltered time series or total reads.
    RollupTable("rollup_hourly_totals", {"organization": "r.organization",
                                         "bucket": _hour()}),
    RollupTable("rollup_daily_totals", {"organization": "r.organization", "bucket": _day()}),
    RollupTable("rollup_hourly", {"organization": "r.organization", "bucket": _hour(),
                                  **_MAIN_KEYS}),
    RollupTable("rollup_daily", {"organization": "r.organization", "bucket": _day(),
                                 **_MAIN_KEYS}),
    RollupTable("rollup_property_hourly", {"organization": "r.organization",
                                           **_PROPERTY_KEYS, "bucket": _hour()},
                source=_PROPERTY_SOURCE),
    RollupTable("rollup_property_daily", {"organization": "r.organization",
                                          **_PROPERTY_KEYS, "bucket": _day()},
                source=_PROPERTY_SOURCE),
    RollupTable("rollup_user_daily", {"organization": "r.organization", "bucket": _day(),
                                      "user_id": "r.user_id"},
                where="r.user_id IS NOT NULL", extras=_SEEN),
    RollupTable("rollup_users", {"organization": "r.organization", "user_id": "r.user_id"},
                where="r.user_id IS NOT NULL", histogram=False, extras=_SEEN),
    RollupTable("rollup_user_models", {"organization": "r.organization",
                                       "user_id": "r.user_id", "model": _text("r.model")},
                where="r.user_id IS NOT NULL", histogram=False),
    RollupTable("rollup_sessions", {"organization": "r.organization",
                                    "session_id": "r.session_id"},
                where="r.session_id IS NOT NULL", histogram=False, extras=(
                    *_SEEN,
                    # The earliest name given: created_at (fixed width) then the name, so
                    # the smallest string is the earliest; readers cut off the first 27.
                    ("name_key", "{sortable_text}",
                     "MIN(CASE WHEN r.session_name IS NOT NULL"
                     " THEN r.created_at || r.session_name END)", "min"))),
)
# Migration 9: per user and hour, so a window's partial first and last day per user
# (metrics?group_by=user_id) are summed from a few hours of rollups, not from raw rows.
USER_HOURLY = RollupTable("rollup_user_hourly", {"organization": "r.organization",
                                                 "bucket": _hour(), "user_id": "r.user_id"},
                          where="r.user_id IS NOT NULL", extras=_SEEN)
# Migration 10: per user and model, by hour and day: the models a user used in any window
# (the Users page) and one user's requests, cost and errors by model (their page), for the
# page's users only, without reading their raw rows. Keyed user first, so a page of users
# over a window is one index range per user; narrow (three counters, no histogram): with
# every counter the two took 12% of a 1M-record SQLite file, like this ~2%.
_USER_MODEL_KEYS = {"organization": "r.organization", "user_id": "r.user_id"}
USER_MODEL_COUNTERS = ("requests", "errors", "cost_usd")
USER_MODEL_HOURLY = RollupTable("rollup_user_model_hourly",
                                {**_USER_MODEL_KEYS, "bucket": _hour(), "model": _text("r.model")},
                                where="r.user_id IS NOT NULL", histogram=False,
                                counters=USER_MODEL_COUNTERS)
USER_MODEL_DAILY = RollupTable("rollup_user_model_daily",
                               {**_USER_MODEL_KEYS, "bucket": _day(), "model": _text("r.model")},
                               where="r.user_id IS NOT NULL", histogram=False,
                               counters=USER_MODEL_COUNTERS)
# Also migration 10: per user and dekad (the 1st-10th, 11th-20th, 21st-last of a month,
# 'YYYY-MM-1' to '-3'), so a 30-day window per user sums ~2 dekads and the days around
# them, half the rows of 30 days (metrics?group_by=user_id: every user's histogram). A
# dekad, not a week: string functions alone give it, the same SQL on both databases.
_DEKAD = ("SUBSTR(r.created_at, 1, 8) || CASE WHEN SUBSTR(r.created_at, 9, 2) <= '10'"
          " THEN '1' WHEN SUBSTR(r.created_at, 9, 2) <= '20' THEN '2' ELSE '3' END")
USER_DEKAD = RollupTable("rollup_user_dekad", {"organization": "r.organization",
                                               "bucket": _DEKAD, "user_id": "r.user_id"},
                         where="r.user_id IS NOT NULL", extras=_SEEN)
TABLES: tuple[RollupTable, ...] = (*TABLES_V6, USER_HOURLY, USER_MODEL_HOURLY,
                                   USER_MODEL_DAILY, USER_DEKAD)
SESSION_NAME_OFFSET = len("2024-01-01T00:00:00.000000Z")


def column_type(column: str, table: RollupTable) -> str:
    if column in ("organization", "bucket", "session_id", "user_id"):
        return "{sortable_text} NOT NULL"
    if column == "status":
        return "INTEGER NOT NULL"
    if column in table.keys:
        return "TEXT NOT NULL"
    for name, type_, *_ in table.extras:
        if name == column:
            return type_
    if column in FLOAT_SUMS or column in MIN_MAX_COLUMNS:
        return "{float}" + (" NOT NULL" if column in FLOAT_SUMS else "")
    if column.endswith("_tokens"):
        return "{bigint} NOT NULL"
    # Counts of requests fit 32 bits per row, and PostgreSQL sums INTEGER in 64-bit
    # arithmetic where it sums BIGINT as NUMERIC, several times slower over 50 columns.
    return "INTEGER NOT NULL"


def create_table_sql(table: RollupTable) -> str:
    columns = ",\n    ".join(f"{c} {column_type(c, table)}" for c in table.columns())
    return (f"CREATE TABLE {table.name} (\n    {columns},\n"
            f"    PRIMARY KEY ({', '.join(table.keys)})\n)")


def fill_sql(table: RollupTable, where: str | None = None) -> str:
    """INSERT … SELECT of the counts of the `requests` rows matching `where` (and the
    table's own condition) into the empty table: migration 6's backfill, the same SQL on
    both databases."""
    # Keys are aliased k_<column> inside: a bare name could mean a joined table's column.
    keys = {f"k_{name}": expr for name, expr in table.keys.items()}
    condition = " AND ".join(f"({c})" for c in (table.where, where) if c and c != "TRUE")
    condition = condition or "TRUE"
    outer = [f"k_{name} AS {name}" for name in table.keys]
    outer += [f"SUM({c}) AS {c}" for c in table.sums()]
    if table.counters is None:
        outer += [f"{fn}({c}) AS {c}" for c, (fn, _) in MIN_MAX_COLUMNS.items()]
    if table.histogram:
        outer += [f"SUM(CASE WHEN lat_bin = {i} THEN latency_count ELSE 0 END) AS {c}"
                  for i, c in enumerate(HISTOGRAM_COLUMNS)]
    select = (f"SELECT {', '.join(outer)}"
              f" FROM ({raw_groups_sql(keys, table.source, condition)}) a"
              f" GROUP BY {', '.join(keys)}")
    if table.extras:
        # Extras are aggregates over the rows themselves: a pass of their own, joined
        # back on the keys.
        key_select = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
        extra_select = ", ".join(f"{agg} AS {name}" for name, _t, agg, _m in table.extras)
        extras_sql = (f"SELECT {key_select}, {extra_select} FROM {table.source}"
                      f" WHERE {condition} GROUP BY {', '.join(keys)}")
        join = " AND ".join(f"e.{k} = g.{k}" for k in table.keys)
        extra_names = [name for name, *_ in table.extras]
        counted = [c for c in table.columns() if c not in extra_names]
        e_keys = ", ".join(f"{k} AS {name}" for k, name in zip(keys, table.keys))
        select = (f"SELECT {', '.join('g.' + c for c in counted)},"
                  f" {', '.join('e.' + n for n in extra_names)}"
                  f" FROM ({select}) g JOIN (SELECT {e_keys},"
                  f" {', '.join(extra_names)} FROM ({extras_sql}) x) e ON {join}")
        columns = ", ".join([*counted, *extra_names])
    else:
        columns = ", ".join(table.columns())
    return f"INSERT INTO {table.name} ({columns}) {select}"


def merge_sql(table: RollupTable, column: str, dialect: str) -> str:
    """The ON CONFLICT update of one column: counters add, extremes keep the min/max."""
    how = "sum"
    if column == "latency_min":
        how = "min"
    elif column == "latency_max":
        how = "max"
    for name, _t, _a, merge in table.extras:
        if name == column:
            how = merge
    old, new = f"{table.name}.{column}", f"excluded.{column}"
    if how == "sum":
        return f"{column} = {old} + {new}"
    # SQLite's two-argument min()/max() is NULL if either is; PostgreSQL's LEAST/GREATEST
    # skip NULLs. COALESCE makes both keep the value that is there.
    fn = {("min", "sqlite"): "MIN", ("max", "sqlite"): "MAX",
          ("min", "postgres"): "LEAST", ("max", "postgres"): "GREATEST"}[how, dialect]
    return f"{column} = COALESCE({fn}({old}, {new}), {old}, {new})"


_EXTRA_INDEXES = (
    "CREATE INDEX rollup_user_daily_user ON rollup_user_daily (organization, user_id, bucket)",
    "CREATE INDEX rollup_sessions_recent ON rollup_sessions (organization, last_at, session_id)",
    "CREATE INDEX rollup_users_recent ON rollup_users (organization, requests)",
)


def migration_statements() -> tuple[str, ...]:
    """Migration 6: the tables, their indexes, and a backfill from the rows stored so far."""
    return (*(create_table_sql(t) for t in TABLES_V6), *_EXTRA_INDEXES,
            *(fill_sql(t) for t in TABLES_V6))


def user_hourly_statements() -> tuple[str, ...]:
    """Migration 9: the hourly per-user table, backfilled from the raw rows (the daily
    table cannot be split into hours). Its primary key (organization, bucket, user_id)
    serves the reads: a few hours of one organization."""
    return (create_table_sql(USER_HOURLY), fill_sql(USER_HOURLY))


def user_model_statements() -> tuple[str, ...]:
    """Migration 10: the per user and model tables and the per user and dekad one,
    backfilled from the raw rows."""
    # Analyzed at once: until the planner knows them, PostgreSQL read a page of users'
    # hours by scanning the organization's whole index (0.3 s on 1M records).
    tables = (USER_MODEL_HOURLY, USER_MODEL_DAILY, USER_DEKAD)
    return (*(create_table_sql(t) for t in tables), *(fill_sql(t) for t in tables),
            *(f"ANALYZE {t.name}" for t in tables))
