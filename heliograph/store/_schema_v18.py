"""Version 18 of the schema (store/_schema.py MIGRATIONS), PostgreSQL only: the status
index of `requests` holds only the records whose status is not 200 (issue #16 item 5,
bench/README.md "Writer throughput").

`requests_org_status` (organization, status, created_at, id) serves a listing filtered
by a status (the Requests page's and the query API's), newest first. Most records are
200s (95% of the demo's), where the index helped nothing: a 200 is as common as a record
is, and the listing index (`requests_org_created`) finds a page of them at once. Yet
every one cost an entry, inserted mid-index at the end of the 200 run (no right-edge
fast path): ~2 µs of the server's CPU a record, ~4% of its share of the writer's work
(COPY of 40,000 live rows into a copy of the partition with this index alone: +2.0 µs
a record over the bare table, bench/README.md). A filter on any other status, or a range
excluding 200 (`status >= 400`), still reads it: the planner proves the index's WHERE
from the filter. The filters put the status in their SQL as a number, not a parameter,
for that proof (analytics/_where.py, conditions.py): a plan made for any parameter
value could not use a partial index.

SQLite keeps the whole index: its writer is left as it is here.
"""

from __future__ import annotations

# The status most records have, left out of the index.
COMMON_STATUS = 200
_INDEX = "requests_org_status"
_KEY = f"(organization, status, created_at, id) WHERE status <> {COMMON_STATUS}"


def partial_status_index(store, cur) -> None:
    """Migration 18, PostgreSQL only. Each partition's index is made first under the
    name every month's indexes have (`requests_org_status_p202612`, as _partitions.build
    names them: plans name the index whatever the month), then the partitioned table's,
    which takes them as its own instead of building others under made-up names."""
    if store.dialect.name != "postgres":
        return
    cur.execute(f"DROP INDEX {_INDEX}")   # every partition's goes with it
    for (name,) in cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'requests'::regclass").fetchall():
        cur.execute(f"CREATE INDEX {_INDEX}_{name[len('requests_'):]} ON {name} {_KEY}")
    cur.execute(f"CREATE INDEX {_INDEX} ON requests {_KEY}")
