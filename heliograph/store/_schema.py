"""The table layout both SQL stores share: versioned migrations, and the codec between a
record dict (records.RECORD_KEYS) and its rows: one in `requests` (everything but the
bodies), one in `request_bodies` (the bodies, when there are any).

DDL is written once with {float}/{bigint}/{bool}/{sortable_text} placeholders that each
dialect fills in. sortable_text is text that sorts byte-wise whatever the database's
collation, so keyset pagination and time comparisons order the same on every store.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

import orjson

from heliograph.records import RECORD_KEYS
from heliograph.store import _cache_entries as cache_entries
from heliograph.store import _ratelimit_rollup as ratelimit_rollup
from heliograph.store import _rollups as rollups
from heliograph.store import _schema_v15 as schema_v15
from heliograph.store import _schema_v17 as schema_v17
from heliograph.store import _schema_v18 as schema_v18
from heliograph.store import _schema_v19 as schema_v19
from heliograph.store._schema_v5 import (
    BODIES_LZ4,
    BODIES_TABLE,
    FILTER_INDEXES,
    SEARCH_INDEX,
    PerDialect,
)
from heliograph.store.journal import BodyJSON

# Record keys kept as plain columns of the same name: everything a filter, a sort or an
# aggregate touches, so the database can index it and analytics never parse JSON.
SCALAR_KEYS: tuple[str, ...] = (
    "id", "created_at", "organization", "key_id",
    "model", "model_used", "provider", "path", "status", "error",
    "latency_ms", "ttft_ms",
    "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "cache_write_tokens", "reasoning_tokens",
    "cost_usd", "cost_known", "cost_saved_usd",
    "user_id", "session_id", "session_path", "session_name",
    "cache", "fallback_index", "feedback",
    "cache_entry", "cache_reference_id",   # since version 11
)
# SQLite has no boolean type and hands these back as 0/1.
BOOL_KEYS = frozenset({"cost_known", "feedback"})
# Record keys only ever read back whole: JSON text in "<key>_json".
JSON_KEYS: tuple[str, ...] = ("properties", "attempts", "ratelimit", "scores")
# What a NULL JSON column reads back as (new_record never leaves these None).
JSON_EMPTY = {"properties": dict, "attempts": list, "scores": dict}
# Bodies are JSON text too, in their own table (request_bodies, since version 5) so
# listings and aggregates never read them; `q` searches them through a full-text index.
BODY_KEYS: tuple[str, ...] = ("request", "response")
BODY_COLUMNS: tuple[str, ...] = ("request_body", "response_body")

# Keys added to RECORD_KEYS after this layout was written are kept in extra_json, so a new
# key is stored and returned without waiting for a migration.
_MAPPED_KEYS = frozenset(SCALAR_KEYS + JSON_KEYS + BODY_KEYS)
_EXTRA_KEYS = tuple(k for k in RECORD_KEYS if k not in _MAPPED_KEYS)

# The columns of `requests`. A row read back may carry BODY_COLUMNS after these (from a
# join with request_bodies).
REQUEST_COLUMNS: tuple[str, ...] = (
    SCALAR_KEYS + tuple(f"{k}_json" for k in JSON_KEYS) + ("extra_json",))
BODY_TABLE_COLUMNS: tuple[str, ...] = (
    "organization", "request_id", "created_at", *BODY_COLUMNS)

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS  # a stray int key must not poison a whole batch


def dumps(value) -> str | None:
    return None if value is None else orjson.dumps(value, option=_JSON_OPTIONS).decode()


def loads(text: str | None):
    return None if text is None else orjson.loads(text)


_BOOL_POSITIONS = tuple(i for i, key in enumerate(SCALAR_KEYS) if key in BOOL_KEYS)
_COST_KNOWN_POSITION = SCALAR_KEYS.index("cost_known")
_ORGANIZATION_POSITION = SCALAR_KEYS.index("organization")


def values_reader(keys: tuple[str, ...]) -> Callable[[dict], tuple]:
    """A function giving a record's values at `keys`, as a tuple. A record read from a
    positional journal line has every key (journal.decode_line), so one itemgetter call
    (C, ~2x faster than map() over dict.get) reads them; a record made elsewhere may
    lack some, and a missing key reads as None."""
    every = itemgetter(*keys)

    def read(rec: dict) -> tuple:
        try:
            return every(rec)
        except KeyError:
            return tuple(map(rec.get, keys))
    return read


# Every value a `requests` row reads from a record: scalars, then the JSON keys, then
# the extra keys.
_ROW_KEYS = SCALAR_KEYS + JSON_KEYS + _EXTRA_KEYS
_row_values = values_reader(_ROW_KEYS)
_JSON_AT = len(SCALAR_KEYS)
assert _ROW_KEYS[:2] == ("id", "created_at")   # record_to_row checks both by position
_EXTRA_AT = _JSON_AT + len(JSON_KEYS)


def record_to_row(rec: dict, null=None, truth=bool) -> tuple:
    """A record's `requests` row, in REQUEST_COLUMNS order. The writer runs this for every
    request, so it is written for speed: the values are read in one call (values_reader)
    and NULLs swapped by map() over a C-level method, not a Python loop per column. `null` stands
    for NULL and `truth` makes the booleans (SQLiteStore passes NaN and int: sqlite3
    binds those several times faster than None and bool, and stores a NaN as NULL)."""
    every = _row_values(rec)
    if not every[0] or not every[1]:
        raise ValueError(f"record without id or created_at: {every[0]!r}")
    values = every[:_JSON_AT]
    if null is not None:
        # {None: null}.get(v, v): null for None, v itself otherwise. A scalar column
        # holding a list or dict (a malformed record) raises TypeError here, as binding
        # it would: a data error the writer salvages.
        swap = {None: null}.get
        row = list(map(swap, values, values))
    else:
        row = list(values)
    if row[_ORGANIZATION_POSITION] is null:  # part of the key: never NULL
        row[_ORGANIZATION_POSITION] = ""
    for i in _BOOL_POSITIONS:
        if row[i] is not null:
            row[i] = truth(row[i])
    row[_COST_KNOWN_POSITION] = truth(row[_COST_KNOWN_POSITION] is not null
                                      and bool(row[_COST_KNOWN_POSITION]))
    row += [null if value is None else dumps(value) for value in every[_JSON_AT:_EXTRA_AT]]
    extras = every[_EXTRA_AT:]
    if extras.count(None) == len(extras):   # the usual case: none of them set
        row.append(null)
    else:
        row.append(dumps({k: v for k, v in zip(_EXTRA_KEYS, extras) if v is not None}))
    return tuple(row)


def _body_text(value) -> str | None:
    """A body's JSON text: as the journal wrote it (BodyJSON), else encoded here."""
    if type(value) is BodyJSON:
        return value.text
    return dumps(value)


def _body_bytes(value) -> bytes | None:
    """A body's JSON as UTF-8 bytes: as the journal wrote it (BodyJSON), else encoded."""
    if type(value) is BodyJSON:
        return value.raw
    return None if value is None else orjson.dumps(value, option=_JSON_OPTIONS)


def _bodies_row(rec: dict, body: Callable) -> tuple | None:
    """A record's `request_bodies` row (BODY_TABLE_COLUMNS order), None without bodies;
    each body as `body` gives it."""
    request, response = rec.get("request"), rec.get("response")
    if request is None and response is None:
        return None
    return (rec.get("organization") or "", rec["id"], rec["created_at"],
            body(request), body(response))


def body_row(rec: dict) -> tuple | None:
    """A record's `request_bodies` row, the bodies as JSON text."""
    return _bodies_row(rec, _body_text)


def body_bytes_row(rec: dict) -> tuple | None:
    """A record's `request_bodies` row, the bodies as their JSON's UTF-8 bytes
    (PostgreSQL's COPY)."""
    return _bodies_row(rec, _body_bytes)


def row_to_record(row) -> dict:
    """The inverse of record_to_row (+ body_row): exactly RECORD_KEYS, with the types
    inserted. `row` is in REQUEST_COLUMNS order, optionally followed by BODY_COLUMNS
    (without them the bodies are None)."""
    values = dict(zip(REQUEST_COLUMNS + BODY_COLUMNS, row))
    rec: dict = {}
    for key in SCALAR_KEYS:
        value = values[key]
        rec[key] = bool(value) if key in BOOL_KEYS and value is not None else value
    for key in JSON_KEYS:
        value = loads(values[f"{key}_json"])
        rec[key] = JSON_EMPTY[key]() if value is None and key in JSON_EMPTY else value
    for key, column in zip(BODY_KEYS, BODY_COLUMNS):
        rec[key] = loads(values.get(column))
    extra = loads(values["extra_json"]) or {}
    for key in _EXTRA_KEYS:
        rec[key] = extra.get(key)
    return {key: rec[key] for key in RECORD_KEYS}


def property_rows(rec: dict) -> list[tuple]:
    """(request_id, organization, name, value) rows for the property index. Names are
    lower-cased because property names are case-insensitive (they arrive as headers);
    the first spelling wins if a record has two that differ only by case. Run twice per
    record by the writer (rows, rollups), so written for speed."""
    properties = rec.get("properties")
    if not properties:
        return []
    request_id, organization = rec["id"], rec.get("organization") or ""
    rows: dict[str, tuple] = {}
    for name, value in properties.items():
        if value is None:
            continue
        lowered = (name if type(name) is str else str(name)).lower()
        if lowered not in rows:
            rows[lowered] = (request_id, organization, lowered,
                             value if type(value) is str else dumps(value))
    return list(rows.values())


_REQUESTS_V1 = """CREATE TABLE requests (
            id {sortable_text} PRIMARY KEY,
            created_at {sortable_text} NOT NULL,
            organization TEXT,
            key_id TEXT,
            model TEXT,
            model_used TEXT,
            provider TEXT,
            path TEXT,
            status INTEGER,
            error TEXT,
            latency_ms {float},
            ttft_ms {float},
            prompt_tokens {bigint},
            completion_tokens {bigint},
            total_tokens {bigint},
            cached_tokens {bigint},
            cache_write_tokens {bigint},
            reasoning_tokens {bigint},
            cost_usd {float},
            cost_known {bool} NOT NULL,
            cost_saved_usd {float},
            user_id TEXT,
            session_id TEXT,
            session_path TEXT,
            session_name TEXT,
            cache TEXT,
            fallback_index INTEGER,
            feedback {bool},
            properties_json TEXT,
            attempts_json TEXT,
            ratelimit_json TEXT,
            scores_json TEXT,
            request_body TEXT,
            response_body TEXT,
            extra_json TEXT
        )"""
# Listing is newest first per organization; the id breaks created_at ties.
_REQUESTS_INDEXES = (
    "CREATE INDEX requests_org_created ON requests (organization, created_at, id)",
    "CREATE INDEX requests_org_user ON requests (organization, user_id, created_at)",
    "CREATE INDEX requests_org_session ON requests (organization, session_id, created_at)",
)
# Version 3: a record id is unique within its organization, not across all of them (a
# caller chooses ids with Helicone-Request-Id; another organization's choice must never
# drop its record). Same columns, the organization required and part of the key.
_REQUESTS_V3 = (
    _REQUESTS_V1.replace("CREATE TABLE requests (", "CREATE TABLE requests_v3 (")
    .replace("id {sortable_text} PRIMARY KEY,", "id {sortable_text} NOT NULL,")
    .replace("organization TEXT,", "organization TEXT NOT NULL,")
    .replace("extra_json TEXT\n", "extra_json TEXT,\n            PRIMARY KEY (organization, id)\n"))
# The columns as version 1 created them (one per line of its DDL), copied by version 3.
_V1_COLUMNS = [line.split()[0] for line in _REQUESTS_V1.splitlines()[1:-1]]
_COPY_REQUESTS_V3 = (
    f"INSERT INTO requests_v3 ({', '.join(_V1_COLUMNS)}) SELECT "
    + ", ".join("COALESCE(organization, '')" if c == "organization" else c
                for c in _V1_COLUMNS)
    + " FROM requests")



def _partition_by_month(store, cur) -> None:
    """Migration 12 (store/_partitions.py); SQLite deletes old rows in batches instead."""
    if store.dialect.name == "postgres":
        from heliograph.store._partitions import convert
        convert(cur)


def _partition_options(store, cur) -> None:
    """Migration 16, PostgreSQL only (store/_partitions.py PARTITION_OPTIONS)."""
    if store.dialect.name == "postgres":
        from heliograph.store._partitions import set_partition_options
        set_partition_options(cur)


# (version, description, statements). Append new steps; never edit an applied one.

# Version 14, SQLite only: a property row is small and always found by its key (a
# record's properties) or by the value index, so the key itself is the table. As a rowid
# table each row the writer inserted went into three B-trees (the rows, the key's
# automatic index, the value index), now two. The value index keeps its columns: in a
# WITHOUT ROWID table its entries end with the key's columns instead of a rowid, which
# it already holds. PostgreSQL has no rowid: nothing to do there.
_PROPERTIES_WITHOUT_ROWID = tuple(PerDialect(sqlite=sql, postgres="") for sql in (
    """CREATE TABLE request_properties_v14 (
            request_id TEXT NOT NULL,
            organization TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (organization, request_id, name)
        ) WITHOUT ROWID""",
    "INSERT INTO request_properties_v14 (request_id, organization, name, value)"
    " SELECT request_id, organization, name, value FROM request_properties"
    " ORDER BY organization, request_id, name",
    "DROP TABLE request_properties",
    "ALTER TABLE request_properties_v14 RENAME TO request_properties",
    "CREATE INDEX request_properties_value"
    " ON request_properties (organization, name, value, request_id)",
))

MIGRATIONS: list[tuple[int, str, tuple[str | PerDialect | Callable, ...]]] = [
    (1, "requests, request properties and gateway keys", (
        _REQUESTS_V1,
        *_REQUESTS_INDEXES,
        """CREATE TABLE request_properties (
            request_id TEXT NOT NULL,
            organization TEXT,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (request_id, name)
        )""",
        "CREATE INDEX request_properties_lookup"
        " ON request_properties (organization, name, value)",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL,
            organization TEXT NOT NULL,
            admin {bool} NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE INDEX api_keys_org ON api_keys (organization, created_at)",
    )),
    (2, "shared state: response cache entries and rate-limit events", (
        # BYTEA is PostgreSQL's byte string; SQLite accepts any type name and stores a
        # bytes value as a BLOB whatever the column's affinity.
        """CREATE TABLE state_cache (
            key TEXT PRIMARY KEY,
            value BYTEA NOT NULL,
            expires_at {float} NOT NULL
        )""",
        "CREATE INDEX state_cache_expires ON state_cache (expires_at)",
        # One row per counted event (a request, or the cents/tokens of a response): the
        # sum over (key, at > now - window) is a sliding window.
        """CREATE TABLE state_events (
            key TEXT NOT NULL,
            at {float} NOT NULL,
            expires_at {float} NOT NULL,
            amount {float} NOT NULL
        )""",
        "CREATE INDEX state_events_key_at ON state_events (key, at)",
        "CREATE INDEX state_events_expires ON state_events (expires_at)",
    )),
    (3, "record ids unique per organization (requests and their properties)", (
        # A rebuild (SQLite cannot change a primary key in place), the same on both.
        _REQUESTS_V3,
        _COPY_REQUESTS_V3,
        "DROP TABLE requests",
        "ALTER TABLE requests_v3 RENAME TO requests",
        *_REQUESTS_INDEXES,
        """CREATE TABLE request_properties_v3 (
            request_id TEXT NOT NULL,
            organization TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (organization, request_id, name)
        )""",
        "INSERT INTO request_properties_v3 (request_id, organization, name, value)"
        " SELECT request_id, COALESCE(organization, ''), name, value"
        " FROM request_properties",
        "DROP TABLE request_properties",
        "ALTER TABLE request_properties_v3 RENAME TO request_properties",
        "CREATE INDEX request_properties_lookup"
        " ON request_properties (organization, name, value)",
    )),
    (4, "gateway keys: an expiry and the models a key may call", (
        # expires_at: utc_iso text (NULL: never); allowed_models_json: a JSON list of
        # model names (NULL: any model).
        "ALTER TABLE api_keys ADD COLUMN expires_at TEXT",
        "ALTER TABLE api_keys ADD COLUMN allowed_models_json TEXT",
    )),
    (5, "bodies in their own table with a text-search index; an index per filter", (
        BODIES_TABLE,
        BODIES_LZ4,
        "INSERT INTO request_bodies (organization, request_id, created_at, request_body,"
        " response_body) SELECT organization, id, created_at, request_body, response_body"
        " FROM requests WHERE request_body IS NOT NULL OR response_body IS NOT NULL"
        " ORDER BY created_at, id",
        # Retention deletes bodies by age.
        "CREATE INDEX request_bodies_created ON request_bodies (created_at)",
        *SEARCH_INDEX,
        "ALTER TABLE requests DROP COLUMN request_body",
        "ALTER TABLE requests DROP COLUMN response_body",
        *FILTER_INDEXES,
    )),
    (6, "rollups: pre-aggregated counters for analytics, backfilled", rollups.migration_statements()),
    (7, "alerts, budgets, per-request webhooks and their delivery queue", (
        # Times are utc_iso text; `secret`s sign deliveries (HMAC needs them in clear).
        """CREATE TABLE alert_rules (
            id TEXT PRIMARY KEY,
            organization TEXT NOT NULL,
            name TEXT NOT NULL,
            metric TEXT NOT NULL,
            threshold {float} NOT NULL,
            time_window TEXT NOT NULL,
            filter_json TEXT NOT NULL,
            group_by TEXT,
            min_requests INTEGER NOT NULL,
            channels_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX alert_rules_org ON alert_rules (organization, created_at)",
        """CREATE TABLE budgets (
            id TEXT PRIMARY KEY,
            organization TEXT NOT NULL,
            name TEXT NOT NULL,
            scope_json TEXT NOT NULL,
            limit_usd {float} NOT NULL,
            period TEXT NOT NULL,
            enforce {bool} NOT NULL,
            alert_at_json TEXT NOT NULL,
            channels_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX budgets_org ON budgets (organization, created_at)",
        # What each rule (or budget threshold) last was, per group: a notice goes out
        # only when this changes.
        """CREATE TABLE alert_states (
            source_id TEXT NOT NULL,
            group_key TEXT NOT NULL,
            firing {bool} NOT NULL,
            value {float},
            changed_at TEXT NOT NULL,
            PRIMARY KEY (source_id, group_key)
        )""",
        """CREATE TABLE alert_history (
            id TEXT PRIMARY KEY,
            organization TEXT NOT NULL,
            alert_id TEXT NOT NULL,
            state TEXT NOT NULL,
            value {float},
            threshold {float} NOT NULL,
            group_key TEXT,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX alert_history_org ON alert_history (organization, at)",
        """CREATE TABLE request_webhooks (
            id TEXT PRIMARY KEY,
            organization TEXT NOT NULL,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            sample_rate {float} NOT NULL,
            filter_json TEXT NOT NULL,
            include_bodies {bool} NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX request_webhooks_org ON request_webhooks (organization)",
        # Records stored for an organization with webhooks, filled in the writer's
        # transaction: the alerts job turns them into deliveries (none lost on a kill).
        """CREATE TABLE webhook_feed (
            organization TEXT NOT NULL,
            request_id TEXT NOT NULL,
            PRIMARY KEY (organization, request_id)
        )""",
        # Every notice to send (alert, budget or per-request webhook): retried with
        # backoff until delivered or out of attempts; the outcome stays recorded.
        """CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            organization TEXT NOT NULL,
            source_id TEXT NOT NULL,
            channel_json TEXT NOT NULL,
            payload_json TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_at {float} NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            delivered_at TEXT
        )""",
        "CREATE INDEX deliveries_due ON deliveries (status, next_at)",
        # Shared state: plain running totals (state/base.py add_total), one row per key.
        """CREATE TABLE state_totals (
            key TEXT PRIMARY KEY,
            amount {float} NOT NULL,
            expires_at {float} NOT NULL
        )""",
        "CREATE INDEX state_totals_expires ON state_totals (expires_at)",
        "CREATE INDEX deliveries_source ON deliveries (organization, source_id)",
    )),
    (8, "stored responses: the Responses API's `store` for providers without one", (
        # response_json: the response object as answered; input_json: the conversation
        # that produced it (carried-over items first), for previous_response_id and
        # GET /v1/responses/{id}/input_items.
        """CREATE TABLE stored_responses (
            organization TEXT NOT NULL,
            id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            response_json TEXT NOT NULL,
            input_json TEXT NOT NULL,
            PRIMARY KEY (organization, id)
        )""",
        "CREATE INDEX stored_responses_created ON stored_responses (created_at)",
        # Their output items by id, for `item_reference` input items (the Vercel AI SDK
        # sends earlier answers that way when store is on).
        """CREATE TABLE stored_response_items (
            organization TEXT NOT NULL,
            id TEXT NOT NULL,
            response_id TEXT NOT NULL,
            item_json TEXT NOT NULL,
            PRIMARY KEY (organization, id)
        )""",
        "CREATE INDEX stored_response_items_response"
        " ON stored_response_items (organization, response_id)",
    )),
    (9, "rollups: per user and hour, backfilled", rollups.user_hourly_statements()),
    (10, "rollups: per user and model, by hour and day, backfilled",
     rollups.user_model_statements()),
    (11, "the cache entry of each record, and cache hits per entry, hour and day",
     cache_entries.migration_statements()),
    (12, "PostgreSQL: requests and bodies partitioned by month; ids kept unique apart",
     (_partition_by_month,)),
    (13, "rollups: 429s and the latest rate-limit report per hour, provider and model,"
         " backfilled", ratelimit_rollup.migration_statements()),
    (14, "SQLite: request properties WITHOUT ROWID (one B-tree less per property row)",
     _PROPERTIES_WITHOUT_ROWID),
    (15, "PostgreSQL: a deduplicated property value index, rollups with room for HOT"
         " updates (store/_schema_v15.py)", schema_v15.migration_statements()),
    (16, "PostgreSQL: bodies rows up to 4 KB kept whole in their page, not cut into TOAST"
         " chunks", (_partition_options,)),
    (17, "PostgreSQL: rollup_users and rollup_sessions without an index on a column their"
         " updates change, so the updates can be HOT (store/_schema_v17.py)",
     schema_v17.migration_statements()),
    (18, "PostgreSQL: the status index without the 200s, most records"
         " (store/_schema_v18.py)", (schema_v18.partial_status_index,)),
    (19, "SQLite: the user and model rollups WITHOUT ROWID, the status index without the"
         " 200s, no rollup_users_recent (store/_schema_v19.py)",
     schema_v19.migration_statements()),
]

SCHEMA_MIGRATIONS_DDL = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""
