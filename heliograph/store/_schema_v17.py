"""Version 17 of the schema (store/_schema.py MIGRATIONS), PostgreSQL only: every update
of `rollup_users` can be a HOT update (issue #16 item 5, bench/README.md "Writer
throughput").

`rollup_users_recent` (organization, requests) was made with the rollups (migration 6)
for a users listing most used first, but no query reads it: the Users page sorts the
users' sums in an outer query (analytics/_users.py `_page`: `ORDER BY sort_key` over a
GROUP BY), which no index can serve, and the other readers of `rollup_users` go by its
primary key (a count, the middle user_id). Meanwhile `requests` changes in every update,
so each user of a batch cost a new row version, a new primary-key entry and a new entry
here. Without it no index of `rollup_users` holds a column the writer updates, and with
the page room migration 15 gave the other rollups (fillfactor 70) an update stays on its
page with no index entry.

SQLite keeps the index (its writer is left as it is here); `rollup_sessions` keeps
`rollup_sessions_recent`, which the sessions listing (newest activity first) walks.
"""

from __future__ import annotations

from heliograph.store._schema_v5 import PerDialect
from heliograph.store._schema_v15 import ROLLUP_FILLFACTOR


def migration_statements() -> tuple[PerDialect, ...]:
    postgres = (
        "DROP INDEX IF EXISTS rollup_users_recent",
        f"ALTER TABLE rollup_users SET (fillfactor = {ROLLUP_FILLFACTOR})",
    )
    return tuple(PerDialect(sqlite="", postgres=sql) for sql in postgres)
