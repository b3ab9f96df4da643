"""Version 19 of the schema (store/_schema.py MIGRATIONS), SQLite only: the user and model
rollups become WITHOUT ROWID tables, the status index loses the 200s, and
`rollup_users_recent` goes (issue #16 item 5, bench/README.md "Writer throughput",
session 15, hSQ). PostgreSQL has had the last two since migrations 17 and 18.

`rollup_users_recent` (organization, requests) was made with the rollups (migration 6)
for a users listing most used first, but the Users page sorts the users' sums in an
outer query (analytics/_users.py `_page`), which no index serves; every update of a user
moved its entry.

Measured and left out: dropping `rollup_user_models` (all time per user and model) and
summing `rollup_user_model_daily` for the Users page's models over all time. Another
~3 µs a record for the writer, but that read grows with the days the log has kept
(a page of 50 users 11.5 -> 22 ms CPU at a month, a page of 1,000 ~1 s at a year; a
sequential scan on PostgreSQL): the all-time table keeps it one row per user and model.

On SQLite `rollup_user_model_hourly` and `_daily` become WITHOUT ROWID tables, their key
the table itself (as request_properties in migration 14). Read by their key alone (a
user's range, then its buckets), as rowid tables each row read was an entry of the key's
automatic index, then the row looked up by its rowid elsewhere in the file; the all-time
models of a page of 50 users (every day of theirs) took twice the CPU that way. Each
upsert of the writer went into both B-trees; now one: ~3.5% fewer bytes written a record
(bench/README.md). Their rows are narrow (seven columns), as
this layout wants; with every rollup table rebuilt so the writer wrote more (measured,
not done).

SQLite's `requests_org_status` leaves the 200s out, as PostgreSQL's has since migration
18 (_schema_v18.py: 95% of records, entries at the end of the 200 run mid-index that no
listing reads). SQLite's planner uses a partial index only where the query holds its
WHERE term as written, so its status filters write `r.status <> 200` beside a comparison
that 200 fails (analytics/conditions.py status_condition). ~1.3% fewer bytes a record
and ~2 µs less a `requests` insert (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Callable

from heliograph.store._rollups import (
    USER_MODEL_DAILY,
    USER_MODEL_HOURLY,
    RollupTable,
    create_table_sql,
)
from heliograph.store._schema_v5 import PerDialect
from heliograph.store._schema_v18 import COMMON_STATUS

# SQLite's status index as PostgreSQL's since migration 18: no 200s.
_STATUS_INDEX = tuple(PerDialect(sqlite=sql, postgres="") for sql in (
    "DROP INDEX requests_org_status",
    "CREATE INDEX requests_org_status ON requests (organization, status, created_at, id)"
    f" WHERE status <> {COMMON_STATUS}",
))


def _status_index_statistics(store, cur) -> None:
    """SQLite: the new index's planner statistics at once (its old ones went with it),
    where the database has any. Without them the planner read a range of statuses
    (`status >= 400`) through it and sorted its ~45,000 entries, 0.1-0.2 s on 1M records,
    instead of walking the listing index (~1 ms) until the background job's next ANALYZE.
    A database never analyzed is left so: one index's statistics beside none would weigh
    it against the others' defaults. Sampled as that job samples (store/sqlite.py)."""
    if store.dialect.name != "sqlite":
        return
    if cur.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        cur.execute("PRAGMA analysis_limit = 1000")
        cur.execute("ANALYZE requests_org_status")


def _without_rowid(table: RollupTable) -> tuple[PerDialect, ...]:
    """SQLite: the table rebuilt WITHOUT ROWID, its rows copied in key order."""
    name, keys, columns = table.name, ", ".join(table.keys), ", ".join(table.columns())
    return tuple(PerDialect(sqlite=sql, postgres="") for sql in (
        create_table_sql(table).replace(f"CREATE TABLE {name} ", f"CREATE TABLE {name}_v19 ")
        + " WITHOUT ROWID",
        f"INSERT INTO {name}_v19 ({columns}) SELECT {columns} FROM {name} ORDER BY {keys}",
        f"DROP TABLE {name}",
        f"ALTER TABLE {name}_v19 RENAME TO {name}",
    ))


def migration_statements() -> tuple[str | PerDialect | Callable, ...]:
    return (PerDialect(sqlite="DROP INDEX IF EXISTS rollup_users_recent", postgres=""),
            *_without_rowid(USER_MODEL_HOURLY), *_without_rowid(USER_MODEL_DAILY),
            *_STATUS_INDEX, _status_index_statistics)
