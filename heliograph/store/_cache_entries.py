"""Cache hits per entry, hour and day (the Cache page's most-hit entries), kept by the
writer.

A record that asked for the cache carries `cache_entry` (proxy/cache.py entry_id), and a
hit the id of the request whose answer it was served (`cache_reference_id`). These
rollups count each entry's hits per hour and per day: how many, what they saved (the
cost the calls would have had), their latency, the first and last hit, the model asked
and the fill the latest hit names. The read side sums a window's days and hours from
here (analytics/cache_entries.py), so the page never groups raw hits over a long window.
`requests_org_cache_entry` serves the Requests page's "hits of this entry".

Apart from the other rollups (_rollups.py, _rollup_writer.py) because it counts only
hits and needs neither their histogram nor their dimensions: a small table and a few
lines here, maintained in the same transaction as the rows.
"""

from __future__ import annotations

# By grain: hours for a window's edges and short windows, days for the rest (at a few
# hits per entry and hour an hour-entry row is nearly one hit; a day holds several).
TABLES = {"hour": "rollup_cache_entries", "day": "rollup_cache_entries_daily"}
KEYS = ("organization", "bucket", "cache_entry")
COLUMNS = (*KEYS, "hits", "saved_usd", "latency_sum", "latency_count", "first_at",
           "last_at", "model", "last_fill")
_BUCKET_CHARS = {"hour": 13, "day": 10}   # of created_at: 'YYYY-MM-DDTHH', 'YYYY-MM-DD'

_CREATE_TABLE = """CREATE TABLE {table} (
    organization {{sortable_text}} NOT NULL,
    bucket {{sortable_text}} NOT NULL,
    cache_entry {{sortable_text}} NOT NULL,
    hits INTEGER NOT NULL,
    saved_usd {{float}} NOT NULL,
    latency_sum {{float}} NOT NULL,
    latency_count INTEGER NOT NULL,
    first_at {{sortable_text}} NOT NULL,
    last_at {{sortable_text}} NOT NULL,
    model TEXT NOT NULL,
    last_fill {{sortable_text}} NOT NULL,
    PRIMARY KEY (organization, bucket, cache_entry)
)"""

# The Requests page's "hits of this entry" and the lookup of the miss that filled it:
# only records that asked for the cache have an entry, so the index holds only them.
REQUESTS_INDEX = ("CREATE INDEX requests_org_cache_entry ON requests"
                  " (organization, cache_entry, cache, created_at, id)"
                  " WHERE cache_entry IS NOT NULL")


def migration_statements() -> tuple[str, ...]:
    """The column, its index and the (empty) rollups: rows stored before carry no entry,
    so there is nothing to backfill."""
    return ("ALTER TABLE requests ADD COLUMN cache_entry TEXT",
            "ALTER TABLE requests ADD COLUMN cache_reference_id TEXT", REQUESTS_INDEX,
            *(_CREATE_TABLE.format(table=table) for table in TABLES.values()))


def deltas(records: list[dict], grain: str = "hour") -> list[tuple]:
    """One row (COLUMNS order) per organization, bucket of `grain` and entry hit in
    `records`, in key order (concurrent writers lock rows in the same order)."""
    chars = _BUCKET_CHARS[grain]
    rows: dict[tuple, list] = {}
    for rec in records:
        entry = rec.get("cache_entry")
        if entry is None or rec.get("cache") != "hit":
            continue
        at = rec["created_at"]
        key = (rec.get("organization") or "", at[:chars], entry)
        latency = rec.get("latency_ms")
        fill = fill_key(at, rec.get("cache_reference_id"))
        row = rows.get(key)
        if row is None:
            rows[key] = [1, rec.get("cost_saved_usd") or 0.0, latency or 0.0,
                         0 if latency is None else 1, at, at, rec.get("model") or "", fill]
            continue
        row[0] += 1
        row[1] += rec.get("cost_saved_usd") or 0.0
        row[2] += latency or 0.0
        row[3] += 0 if latency is None else 1
        row[4], row[5] = min(row[4], at), max(row[5], at)
        row[6] = max(row[6], rec.get("model") or "")
        row[7] = max(row[7], fill)
    return [(*key, *row) for key, row in sorted(rows.items())]


FILL_AT = len("2024-01-01T00:00:00.000000Z")


def fill_key(at: str, reference: str | None) -> str:
    """last_fill: a hit's time then the id of the request that filled what it was served
    ('' without one), so the largest names the fill of the latest hit; readers cut off
    the first FILL_AT characters."""
    return "" if reference is None else at + reference


def _updates(table: str, dialect: str) -> str:
    smaller, larger = ("MIN", "MAX") if dialect == "sqlite" else ("LEAST", "GREATEST")
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}"
                      for c in ("hits", "saved_usd", "latency_sum", "latency_count"))
    return (f"{added}, first_at = {smaller}({table}.first_at, excluded.first_at),"
            f" last_at = {larger}({table}.last_at, excluded.last_at),"
            f" model = {larger}({table}.model, excluded.model),"
            f" last_fill = {larger}({table}.last_fill, excluded.last_fill)")


_UPDATES = {(table, dialect): _updates(table, dialect) for table in TABLES.values()
            for dialect in ("sqlite", "postgres")}


def maintain(store, cur, records: list[dict]) -> None:
    """Add the hits among the newly stored `records`, in the caller's transaction."""
    for grain, table in TABLES.items():
        rows = deltas(records, grain)
        if not rows:
            return   # no hit in the batch
        store._merge_rows(cur, table, list(COLUMNS), dict.fromkeys(KEYS), rows,
                          _UPDATES[table, store.dialect.name])
