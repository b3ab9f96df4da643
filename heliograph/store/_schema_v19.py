"""Version 19 of the schema (store/_schema.py MIGRATIONS), both stores: `rollup_user_models`
goes, and SQLite's `rollup_users_recent` with it (issue #16 item 5, bench/README.md
"Writer throughput").

It kept every counter per organization, user and model over all time, for one reader:
the Users page's models over all time (analytics/_users.py). `rollup_user_model_daily`
holds the same records per day (both count every record with a user, from migration 10
on, and nothing ever deletes rollup rows), keyed (organization, user_id, bucket, model):
a user's days are one range of its key, so summing them gives the same counts. A live
batch wrote the all-time table's rows as well as the hour's and the day's, at keys in no
order: on SQLite ~180 of a commit's ~3,100 log pages and ~3 µs a record (5.6% of the
bytes a record writes once the log holds a month).

Dropped, not emptied: nothing reads it any more. A database rolled back to an older
release would need the table again (as for any migration, it does not go back).

`rollup_users_recent` (organization, requests) was made with the rollups (migration 6)
for a users listing most used first, but the Users page sorts the users' sums in an
outer query (analytics/_users.py `_page`), which no index serves; every update of a user
moved its entry. PostgreSQL dropped it in migration 17 (IF EXISTS: nothing to do there).
"""

from __future__ import annotations

from heliograph.store._rollups import DROPPED_V19


def migration_statements() -> tuple[str, ...]:
    return (f"DROP TABLE {DROPPED_V19}", "DROP INDEX IF EXISTS rollup_users_recent")
