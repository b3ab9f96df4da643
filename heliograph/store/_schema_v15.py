"""Version 15 of the schema (store/_schema.py MIGRATIONS), PostgreSQL only: cheaper for
the writer, the same for the query API (issue #16 item 5, bench/README.md "Writer
throughput"). Apart from _schema.py only to keep modules small.

- `request_properties_value` loses its last column, `request_id`. With it every entry
  was unique and went into the middle of its (organization, name, value) run in random
  id order: the pages split half-full, ~160 bytes an entry, two entries a demo record
  (a third of the index bytes the writer wrote). Without it the entries of one
  (name, value) are duplicates, which PostgreSQL (13+) keeps as one key and a list of
  row addresses (~6 bytes each) appended in the heap's order. A property filter starts
  from it as before (a bitmap of the rows, their ids read from the table); a listing's
  per-record check of a common value (analytics/_where.py) finds the record's row by
  the primary key (organization, request_id, name).
- The rollup tables that no index reads by a counter are filled to 70% of a page, so an
  update of a group (most of a live batch's ~0.9 group rows a record) can stay on its
  page as a HOT update, without a new entry in the primary key. rollup_sessions and
  rollup_users are indexed by a changing column (last_at, requests): no update of
  theirs can be HOT, and they are left as they are.
"""

from __future__ import annotations

from heliograph.store import _cache_entries as cache_entries
from heliograph.store import _ratelimit_rollup as ratelimit_rollup
from heliograph.store import _rollups as rollups
from heliograph.store._schema_v5 import PerDialect

# Updated in place by the writer, and no index of theirs covers a column it changes.
HOT_ROLLUPS = tuple(
    [table.name for table in rollups.TABLES
     if table.name not in ("rollup_sessions", "rollup_users")]
    + list(cache_entries.TABLES.values()) + [ratelimit_rollup.TABLE])
ROLLUP_FILLFACTOR = 70


def migration_statements() -> tuple[PerDialect, ...]:
    postgres = (
        "DROP INDEX request_properties_value",
        "CREATE INDEX request_properties_value ON request_properties (organization, name, value)",
        *(f"ALTER TABLE {name} SET (fillfactor = {ROLLUP_FILLFACTOR})" for name in HOT_ROLLUPS),
    )
    return tuple(PerDialect(sqlite="", postgres=sql) for sql in postgres)
