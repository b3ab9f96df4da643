"""The rate-limit report (/api/v1/ratelimits) and the Rate limits page's 429 events: from
the hourly rate-limit rollup (store/_ratelimit_rollup.py) for the whole hours of a window
without other filters, from raw rows for the minutes at its edges and for any other
filter. Both paths fold into the same accumulators, so they answer alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from heliograph.analytics._grouped import active_fields
from heliograph.analytics._where import compile_filter
from heliograph.analytics._window import Piece, split
from heliograph.analytics.filters import RequestFilter, normalize_timestamp
from heliograph.store._ratelimit_rollup import ATTEMPT_429_TEXT, TABLE

# The raw-row condition for "an attempt may have got a 429" (a LIKE pattern, passed as a
# parameter: a literal % in the SQL would be a placeholder to psycopg).
ATTEMPT_429_PATTERN = f"%{ATTEMPT_429_TEXT}%"
EVENTS = ("provider_429", "absorbed_429", "gateway_refused")


def _pieces(reader, flt: RequestFilter) -> list[Piece]:
    """The window in pieces: whole hours from the rollup where it answers (no filter but
    the time window), the rest from raw rows."""
    if not reader.use_rollups or active_fields(flt):
        return [Piece("raw", flt.since, flt.until)]
    since = normalize_timestamp(flt.since) if flt.since else None
    until = normalize_timestamp(flt.until) if flt.until else None
    return split(since, until, ("hour",))


def _rollup_rows(reader, organization: str, piece: Piece, columns: str, condition: str,
                 group_by: str = "") -> list[tuple]:
    clauses, params = ["organization = ?"], [organization]
    piece.bucket_clauses(clauses, params)
    return reader._fetchall(f"SELECT {columns} FROM {TABLE}"
                            f" WHERE {' AND '.join(clauses)} AND {condition}{group_by}",
                            params)


def _raw_where(reader, organization: str, flt: RequestFilter, piece: Piece
               ) -> tuple[str, list]:
    window = dataclasses.replace(flt, since=piece.lo, until=piece.hi)
    return compile_filter(organization, window, reader.dialect.like_ci)


# -- per provider and model: latest limits and 429s ------------------------------------
class _Report:
    """Groups by (provider, model): the newest report as (created_at, id, JSON text) and
    429s by hour."""

    def __init__(self) -> None:
        self.groups: dict[tuple, dict] = {}

    def group(self, provider: str, model: str | None) -> dict:
        found = self.groups.get((provider, model))
        if found is None:
            found = self.groups[(provider, model)] = {"latest": None, "by_hour": {}}
        return found

    def report(self, provider: str, model: str | None, created_at: str, request_id: str,
               text: str) -> None:
        group = self.group(provider, model)
        if group["latest"] is None or (created_at, request_id) > group["latest"][:2]:
            group["latest"] = (created_at, request_id, text)

    def count_429(self, provider: str, model: str | None, hour: str, n: int = 1) -> None:
        by_hour = self.group(provider, model)["by_hour"]
        by_hour[hour] = by_hour.get(hour, 0) + n

    def add_rows(self, rows: Iterable[tuple]) -> None:
        """Raw rows (provider, model_used, created_at, id, status, ratelimit_json,
        attempts_json). A 429 counts for the provider and model of the attempt that got
        it; a record without attempts counts by its own status."""
        import orjson

        for provider, model, created_at, request_id, status, report, attempts in rows:
            if report:
                self.report(provider, model, created_at, request_id, report)
            hour = created_at[:13] + ":00Z"
            if not attempts or attempts == "[]":
                if status == 429:
                    self.count_429(provider, model, hour)
                continue
            if ATTEMPT_429_TEXT not in attempts:
                continue
            for attempt in orjson.loads(attempts):
                if isinstance(attempt, dict) and attempt.get("status") == 429:
                    self.count_429(attempt.get("provider") or provider,
                                   attempt.get("model") or model, hour)

    def finish(self) -> dict:
        import orjson

        data = []
        for (provider, model), group in self.groups.items():
            latest = group["latest"]
            by_hour = sorted(group["by_hour"].items())
            data.append({"provider": provider, "model": model,
                         "latest": orjson.loads(latest[2]) if latest else None,
                         "latest_at": latest[0] if latest else None,
                         "requests_429": sum(count for _hour, count in by_hour),
                         "rate_limited_over_time": [{"key": hour, "count": count}
                                                    for hour, count in by_hour]})
        data.sort(key=lambda g: (g["provider"] or "", g["model"] or ""))
        return {"data": data}


def ratelimits(reader, organization: str, flt: RequestFilter) -> dict:
    """Per provider and model: the latest limits the provider reported, and 429s by hour
    (every provider 429, those a retry or a fallback absorbed included)."""
    found = _Report()
    for piece in _pieces(reader, flt):
        if piece.grain == "raw":
            where, params = _raw_where(reader, organization, flt, piece)
            reader._aggregate(
                "SELECT r.provider, r.model_used, r.created_at, r.id, r.status,"
                " r.ratelimit_json, r.attempts_json FROM requests r"
                f" WHERE {where} AND r.provider IS NOT NULL"
                " AND (r.ratelimit_json IS NOT NULL OR r.status = 429"
                " OR r.attempts_json LIKE ?)", [*params, ATTEMPT_429_PATTERN],
                found.add_rows)
            continue
        for bucket, provider, model, count, at, request_id, text in _rollup_rows(
                reader, organization, piece,
                "bucket, provider, model, attempts_429, latest_at, latest_id, latest_json",
                "(attempts_429 > 0 OR latest_at IS NOT NULL)"):
            model = model or None   # stored as '' for NULL
            if at is not None:
                found.report(provider, model, at, request_id, text)
            if count:
                found.count_429(provider, model, bucket + ":00Z", count)
    return found.finish()


# -- the page's events: 429s by hour and by kind -----------------------------------------
def rate_limit_events(reader, organization: str, flt: RequestFilter) -> dict:
    """429s by hour: refused by the provider (the request failed with it), absorbed (an
    attempt got a 429 but a retry or fallback answered), and refused by the gateway
    itself (a rate-limit policy or budget: no upstream attempt was made)."""
    by_hour: dict[str, list[int]] = {}

    def add(hour: str, counts: Iterable) -> None:
        row = by_hour.setdefault(hour, [0, 0, 0])
        for i, count in enumerate(counts):
            row[i] += int(count or 0)

    for piece in _pieces(reader, flt):
        if piece.grain == "raw":
            where, params = _raw_where(reader, organization, flt, piece)
            hour = "SUBSTR(r.created_at, 1, 13)"
            no_attempt = "(r.attempts_json IS NULL OR r.attempts_json = '[]')"
            met_429 = "r.attempts_json LIKE ?"
            rows = reader._fetchall(
                f"SELECT {hour},"
                f" SUM(CASE WHEN r.status = 429 AND NOT {no_attempt} THEN 1 ELSE 0 END),"
                f" SUM(CASE WHEN r.status <> 429 AND {met_429} THEN 1 ELSE 0 END),"
                f" SUM(CASE WHEN r.status = 429 AND {no_attempt} THEN 1 ELSE 0 END)"
                f" FROM requests r WHERE {where} AND (r.status = 429 OR {met_429})"
                f" GROUP BY {hour}",
                (ATTEMPT_429_PATTERN, *params, ATTEMPT_429_PATTERN))
        else:
            rows = _rollup_rows(reader, organization, piece,
                                "bucket, SUM(provider_429), SUM(absorbed_429),"
                                " SUM(gateway_refused)",
                                "(provider_429 > 0 OR absorbed_429 > 0 OR gateway_refused > 0)",
                                " GROUP BY bucket")
        for hour, *counts in rows:
            add(hour, counts)
    hours = [{"hour": hour + ":00Z", **dict(zip(EVENTS, counts))}
             for hour, counts in sorted(by_hour.items()) if any(counts)]
    return {"by_hour": hours,
            "total": {name: sum(row[name] for row in hours) for name in EVENTS}}
