"""The rate-limit rollup (migration 13): per organization, hour, provider and model, the
429s and the newest `x-ratelimit-*` report, kept by the writer in the insert's
transaction like the other rollups (_rollups.py), so the Rate limits page and
/api/v1/ratelimits never read a week of raw rows (1.9 s on 1M records).

Each column mirrors what the raw-row answers count (analytics/_ratelimits.py reads both):
  attempts_429     429s as /api/v1/ratelimits counts them: each attempt that got one, under
                   the attempt's provider and model; a record without attempts by its own
                   status. Only records with a provider (as that report reads them).
  provider_429     records that failed with a 429 after reaching the provider,
  absorbed_429     records that answered although an attempt got a 429,
  gateway_refused  records refused with a 429 before any attempt (a policy or budget):
                   the three counts of the page's events chart, under the record's own
                   provider and model, whatever they are.
  latest_*         the newest rate-limit report of the hour (created_at, then id, as the
                   raw answer orders them), from records with a provider.
NULL provider and model are stored as '' (as in the other rollups).
"""

from __future__ import annotations

import orjson

from heliograph.store._schema_v5 import PerDialect

TABLE = "rollup_ratelimit_hourly"
KEYS = ("organization", "bucket", "provider", "model")
COUNTS = ("attempts_429", "provider_429", "absorbed_429", "gateway_refused")
LATEST = ("latest_at", "latest_id", "latest_json")
COLUMNS = (*KEYS, *COUNTS, *LATEST)
# Attempts are stored as orjson writes them (no spaces): the raw answers find a record
# with a 429 attempt by this text, and so does the writer (_mentions_429).
ATTEMPT_429_TEXT = '"status":429'

CREATE = f"""CREATE TABLE {TABLE} (
    organization {{sortable_text}} NOT NULL,
    bucket {{sortable_text}} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    attempts_429 INTEGER NOT NULL,
    provider_429 INTEGER NOT NULL,
    absorbed_429 INTEGER NOT NULL,
    gateway_refused INTEGER NOT NULL,
    latest_at {{sortable_text}},
    latest_id {{sortable_text}},
    latest_json TEXT,
    PRIMARY KEY (organization, bucket, provider, model)
)"""

_HOUR = "SUBSTR(r.created_at, 1, 13)"
_HAS_ATTEMPTS = "(r.attempts_json IS NOT NULL AND r.attempts_json <> '[]')"
# As the raw answers' LIKE, without a literal % (psycopg reads one as a placeholder).
_MENTIONS_429 = {"sqlite": f"instr(r.attempts_json, '{ATTEMPT_429_TEXT}') > 0",
                 "postgres": f"strpos(r.attempts_json, '{ATTEMPT_429_TEXT}') > 0"}
_NO_LATEST = "NULL AS lat, NULL AS lid, NULL AS ljs"


def _own_counts(dialect: str) -> str:
    """Per record: its own 429 (no attempts, with a provider) and the three event counts,
    under its own provider and model. Only records that count anywhere are read."""
    return (
        f"SELECT r.organization AS o, {_HOUR} AS b, COALESCE(r.provider, '') AS p,"
        " COALESCE(r.model_used, '') AS m,"
        f" CASE WHEN r.provider IS NOT NULL AND r.status = 429 AND NOT {_HAS_ATTEMPTS}"
        " THEN 1 ELSE 0 END AS a429,"
        f" CASE WHEN r.status = 429 AND {_HAS_ATTEMPTS} THEN 1 ELSE 0 END AS p429,"
        f" CASE WHEN r.status <> 429 AND {_MENTIONS_429[dialect]} THEN 1 ELSE 0 END"
        " AS abs429,"
        f" CASE WHEN r.status = 429 AND NOT {_HAS_ATTEMPTS} THEN 1 ELSE 0 END AS gw,"
        f" {_NO_LATEST} FROM requests r"
        f" WHERE r.status = 429 OR {_MENTIONS_429[dialect]}")


# Each attempt that got a 429, under the attempt's provider and model (or the record's).
_ATTEMPT_429S = PerDialect(
    sqlite=(f"SELECT r.organization AS o, {_HOUR} AS b,"
            " COALESCE(NULLIF(json_extract(a.value, '$.provider'), ''), r.provider) AS p,"
            " COALESCE(NULLIF(json_extract(a.value, '$.model'), ''), r.model_used, '') AS m,"
            f" 1 AS a429, 0 AS p429, 0 AS abs429, 0 AS gw, {_NO_LATEST}"
            " FROM requests r, json_each(r.attempts_json) a"
            f" WHERE r.provider IS NOT NULL AND {_MENTIONS_429['sqlite']}"
            " AND json_type(r.attempts_json) = 'array' AND a.type = 'object'"
            " AND json_extract(a.value, '$.status') = 429"),
    postgres=(f"SELECT r.organization AS o, {_HOUR} AS b,"
              " COALESCE(NULLIF(a.value ->> 'provider', ''), r.provider) AS p,"
              " COALESCE(NULLIF(a.value ->> 'model', ''), r.model_used, '') AS m,"
              f" 1 AS a429, 0 AS p429, 0 AS abs429, 0 AS gw, {_NO_LATEST}"
              " FROM requests r CROSS JOIN LATERAL jsonb_array_elements("
              " CASE WHEN jsonb_typeof(r.attempts_json::jsonb) = 'array'"
              " THEN r.attempts_json::jsonb ELSE '[]'::jsonb END) a(value)"
              f" WHERE r.provider IS NOT NULL AND {_MENTIONS_429['postgres']}"
              " AND jsonb_typeof(a.value) = 'object'"
              " AND jsonb_typeof(a.value -> 'status') = 'number'"
              " AND (a.value ->> 'status')::numeric = 429"))
# The newest report per hour, provider and model.
_LATEST = (
    "SELECT o, b, p, m, 0 AS a429, 0 AS p429, 0 AS abs429, 0 AS gw, lat, lid, ljs FROM ("
    f"SELECT r.organization AS o, {_HOUR} AS b, r.provider AS p,"
    " COALESCE(r.model_used, '') AS m, r.created_at AS lat, r.id AS lid,"
    " r.ratelimit_json AS ljs, ROW_NUMBER() OVER (PARTITION BY r.organization,"
    f" {_HOUR}, r.provider, COALESCE(r.model_used, '')"
    " ORDER BY r.created_at DESC, r.id DESC) AS newest FROM requests r"
    " WHERE r.provider IS NOT NULL AND r.ratelimit_json IS NOT NULL) x WHERE newest = 1")


def _fill(dialect: str) -> str:
    parts = " UNION ALL ".join(
        (_own_counts(dialect), _ATTEMPT_429S.for_dialect(dialect), _LATEST))
    return (f"INSERT INTO {TABLE} ({', '.join(COLUMNS)})"
            " SELECT o, b, p, m, SUM(a429), SUM(p429), SUM(abs429), SUM(gw),"
            f" MAX(lat), MAX(lid), MAX(ljs) FROM ({parts}) u GROUP BY o, b, p, m")


def migration_statements() -> tuple[str | PerDialect, ...]:
    """Migration 13: the table, backfilled from the rows stored so far (a record's rows
    are never changed after its insert, so the fill and the writer cannot overlap)."""
    return (CREATE, PerDialect(sqlite=_fill("sqlite"), postgres=_fill("postgres")))


# -- the writer's side --------------------------------------------------------------
_429_BYTES = ATTEMPT_429_TEXT.encode()


def _mentions_429(value) -> bool:
    """Whether the JSON text of `value` (as the requests row stores it) holds
    ATTEMPT_429_TEXT, as the backfill's SQL asks of attempts_json: only a "status" key
    whose number is written starting with 429 does (quotes inside strings are escaped in
    JSON, so no string can). Written by orjson and searched in C: ~4x cheaper than
    walking the attempts in Python, which this was."""
    return _429_BYTES in orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def deltas(records: list[dict], attempts_json: list | None = None) -> dict[tuple, list]:
    """{(organization, bucket, provider, model): [counts..., latest_at, latest_id,
    latest report]} for the records that count here (most records do not).
    `attempts_json`: each record's attempts as the requests row holds them (its JSON
    text), when the caller has made the rows: searched instead of encoding the attempts
    again (~10,000 of the writer's ~480,000 instructions a record)."""
    out: dict[tuple, list] = {}

    def row(organization: str, bucket: str, provider, model) -> list:
        key = (organization, bucket, provider or "", model or "")
        found = out.get(key)
        if found is None:
            found = out[key] = [0, 0, 0, 0, None, None, None]
        return found

    for i, rec in enumerate(records):
        get = rec.get
        status, attempts, report = get("status"), get("attempts"), get("ratelimit")
        if status != 429 and report is None and not attempts:
            continue
        has_attempts = attempts is not None and attempts != []
        if not has_attempts:
            mentions = False
        elif attempts_json is not None and type(text := attempts_json[i]) is str:
            mentions = ATTEMPT_429_TEXT in text
        else:
            mentions = _mentions_429(attempts)
        if status != 429 and report is None and not mentions:
            continue
        organization, bucket = get("organization") or "", rec["created_at"][:13]
        provider, model = get("provider"), get("model_used")
        own = None
        if status == 429 or (status is not None and mentions):
            own = row(organization, bucket, provider, model)
            if status == 429:
                own[1 if has_attempts else 3] += 1
            else:
                own[2] += 1
        if provider is None:
            continue
        if status == 429 and not has_attempts:
            (own or row(organization, bucket, provider, model))[0] += 1
        if mentions and isinstance(attempts, list):
            for attempt in attempts:
                if isinstance(attempt, dict) and attempt.get("status") == 429:
                    row(organization, bucket, attempt.get("provider") or provider,
                        attempt.get("model") or model)[0] += 1
        if report is not None:
            newest = row(organization, bucket, provider, model)
            if newest[4] is None or (rec["created_at"], rec["id"]) > (newest[4], newest[5]):
                newest[4:7] = rec["created_at"], rec["id"], report
    from heliograph.store._schema import dumps  # (_schema imports this module)

    for values in out.values():
        if values[6] is not None:
            values[6] = dumps(values[6])   # the text the requests row holds
    return out


def _newer() -> str:
    old, new = TABLE, "excluded"
    return (f"{new}.latest_at IS NOT NULL AND ({old}.latest_at IS NULL"
            f" OR {new}.latest_at > {old}.latest_at OR ({new}.latest_at = {old}.latest_at"
            f" AND {new}.latest_id > {old}.latest_id))")


UPDATES = ", ".join(
    [f"{c} = {TABLE}.{c} + excluded.{c}" for c in COUNTS]
    + [f"{c} = CASE WHEN {_newer()} THEN excluded.{c} ELSE {TABLE}.{c} END" for c in LATEST])


def maintain(store, cur, records: list[dict], attempts_json: list | None = None) -> None:
    """Add the newly stored `records`, in the caller's transaction (rows in key order, as
    the other rollups, so concurrent writers lock them in the same order).
    `attempts_json`: as for deltas."""
    found = deltas(records, attempts_json)
    if found:
        store._merge_rows(cur, TABLE, list(COLUMNS), dict.fromkeys(KEYS),
                          [(*key, *values) for key, values in sorted(found.items())],
                          UPDATES)
