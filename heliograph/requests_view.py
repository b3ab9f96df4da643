"""`heliograph requests`: the latest requests as a table in the terminal, read from the
configured database (through heliograph.analytics, the read side) or from a running
gateway's GET /api/v1/requests. The filters are the query API's, so both sources answer
the same question; --follow polls every second and prints only the records not shown yet.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Protocol

Query = list[tuple[str, str]]

# Polls ask for at least this many of the newest records, so a burst between two polls
# is not cut to --limit.
FOLLOW_WINDOW = 200
# Ids remembered while following (to print each record once); the oldest are forgotten.
MAX_SEEN = 20_000
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

COLUMNS = (("TIME (UTC)", 19), ("MODEL", 26), ("PROVIDER", 10), ("STATUS", 6),
           ("TOKENS", 7), ("COST $", 10), ("LATENCY MS", 10), ("USER", 16), ("ID", 8))


class SourceError(Exception):
    """What the user sees (a bad filter, an unreachable gateway), without a traceback."""


def since_value(text: str, now: float | None = None) -> str:
    """--since: ISO 8601 as the query API takes it, or a duration back from now
    ("30s", "15m", "2h", "7d")."""
    found = _RELATIVE.match(text.strip())
    if not found:
        return text
    ago = float(found.group(1)) * _SECONDS[found.group(2)]
    at = (now if now is not None else time.time()) - ago
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat()


def build_query(model: str | None = None, provider: str | None = None,
                status: int | None = None, user_id: str | None = None,
                session_id: str | None = None, properties: tuple[str, ...] = (),
                since: str | None = None) -> Query:
    """The query API's parameters for these options (the database path parses the same)."""
    query: Query = []
    for name, value in (("model", model), ("provider", provider), ("user_id", user_id),
                        ("session_id", session_id)):
        if value is not None:
            query.append((name, value))
    if status is not None:
        query.append(("status", str(status)))
    if since is not None:
        query.append(("since", since_value(since)))
    for prop in properties:
        name, sep, value = prop.partition("=")
        if not sep or not name.strip():
            raise SourceError(f"--property takes Name=value, got {prop!r}")
        query.append(("property." + name.strip(), value))
    return query


class Source(Protocol):
    """Where `heliograph requests` reads: the database, or a running gateway's API."""

    def fetch(self, query: Query, limit: int) -> list[dict]: ...

    def close(self) -> None: ...


class DatabaseSource:
    """The configured database, read as the query API reads it (one organization)."""

    def __init__(self, database_url: str, organization: str):
        from heliograph.analytics import open_analytics
        try:
            self.analytics = open_analytics(database_url, threads=1)
        except Exception as exc:  # unreachable or not a database: say so, no traceback
            raise SourceError(f"cannot open the database: {exc}") from None
        self.organization = organization

    def fetch(self, query: Query, limit: int) -> list[dict]:
        from heliograph.analytics.filters import parse_filter
        from heliograph.errors import GatewayError
        try:
            flt = parse_filter(query)
            return self.analytics.list_requests(self.organization, flt, limit)[0]
        except (GatewayError, ValueError) as exc:
            raise SourceError(str(exc)) from None

    def close(self) -> None:
        self.analytics.close()


class HttpSource:
    """A running gateway's GET /api/v1/requests, with a gateway key (its organization's)."""

    def __init__(self, url: str, key: str, timeout_s: float = 30.0):
        self.url = url.rstrip("/") + "/api/v1/requests"
        self.key = key
        self.timeout_s = timeout_s

    def fetch(self, query: Query, limit: int) -> list[dict]:
        url = self.url + "?" + urllib.parse.urlencode([*query, ("limit", str(limit))])
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.load(resp)["data"]
        except urllib.error.HTTPError as err:
            raise SourceError(f"{err.code} from {self.url}: {_error_message(err)}") from None
        except (OSError, ValueError, KeyError) as exc:
            raise SourceError(f"cannot read {self.url}: {exc}") from None

    def close(self) -> None:
        pass


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        return json.loads(err.read())["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return err.reason or "error"


def _cell(value: object, width: int) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def header() -> str:
    return "  ".join(f"{name:<{width}}" for name, width in COLUMNS).rstrip()


def format_row(record: dict) -> str:
    created = str(record.get("created_at") or "")[:19].replace("T", " ")
    cost = record.get("cost_usd")
    latency = record.get("latency_ms")
    values = (created, record.get("model"), record.get("provider"), record.get("status"),
              record.get("total_tokens"),
              f"{cost:.6f}" if isinstance(cost, int | float) else None,
              round(latency) if isinstance(latency, int | float) else None,
              record.get("user_id"), str(record.get("id") or "")[:8])
    return "  ".join(f"{_cell(value, width):<{width}}"
                     for value, (_, width) in zip(values, COLUMNS)).rstrip()


def show(source: Source, query: Query, limit: int, follow: bool, echo: Callable[[str], None],
         interval_s: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
    """Print the newest `limit` records oldest first (as a log reads); with follow, poll
    every interval_s and print each record not printed yet, until Ctrl-C."""
    records = source.fetch(query, limit)
    echo(header())
    for record in reversed(records):
        echo(format_row(record))
    if not follow:
        return
    seen = dict.fromkeys(record["id"] for record in records)
    try:
        while True:
            sleep(interval_s)
            new = [r for r in source.fetch(query, max(limit, FOLLOW_WINDOW))
                   if r["id"] not in seen]
            for record in reversed(new):
                echo(format_row(record))
                seen[record["id"]] = None
            while len(seen) > MAX_SEEN:
                del seen[next(iter(seen))]
    except KeyboardInterrupt:
        return
