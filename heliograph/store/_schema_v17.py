"""Version 17 of the schema (store/_schema.py MIGRATIONS), PostgreSQL only: updates of
`rollup_users` and `rollup_sessions` can be HOT updates, like the other rollups'
(migration 15; issue #16 item 5, bench/README.md "Writer throughput"). A HOT update
writes the row's new version in its own page and no index entry; PostgreSQL (15) allows
it only when no indexed column changes and the page has room.

- `rollup_users_recent` (organization, requests) goes. It was made with the rollups
  (migration 6) for a users listing most used first, but the Users page sorts the users'
  sums in an outer query (analytics/_users.py `_page`), which no index serves, and the
  other readers go by the primary key. `requests` changes in every update.
- `rollup_sessions_recent` (organization, last_at, session_id) becomes
  `rollup_sessions_minute` (organization, last_minute): the minute of `last_at`, a
  generated column, so a session's updates within a minute leave every index as it is.
  The sessions listing (newest activity first, analytics/_summaries.py) walks that index
  backwards and sorts each minute's sessions by (last_at, session_id): a minute prefix
  sorts as the time itself does, so the order is the same.
- Both tables get the rollups' page room (fillfactor 70).

SQLite keeps both indexes: its writer is left as it is here.
"""

from __future__ import annotations

from heliograph.store._schema_v5 import PerDialect
from heliograph.store._schema_v15 import ROLLUP_FILLFACTOR

# The first 16 characters of an ISO time: 'YYYY-MM-DDTHH:MM'.
MINUTE_CHARS = 16
SESSIONS_MINUTE_INDEX = "rollup_sessions_minute"


def migration_statements() -> tuple[PerDialect, ...]:
    postgres = (
        "DROP INDEX IF EXISTS rollup_users_recent",
        f"ALTER TABLE rollup_users SET (fillfactor = {ROLLUP_FILLFACTOR})",
        'ALTER TABLE rollup_sessions ADD COLUMN last_minute TEXT COLLATE "C"'
        f" GENERATED ALWAYS AS (substr(last_at, 1, {MINUTE_CHARS})) STORED",
        f"CREATE INDEX {SESSIONS_MINUTE_INDEX} ON rollup_sessions (organization, last_minute)",
        "DROP INDEX IF EXISTS rollup_sessions_recent",
        f"ALTER TABLE rollup_sessions SET (fillfactor = {ROLLUP_FILLFACTOR})",
    )
    return tuple(PerDialect(sqlite="", postgres=sql) for sql in postgres)
