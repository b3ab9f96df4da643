"""The query API's filters, parsed in one place.

Every /api/v1 read endpoint takes the same filters (PRODUCT.md "Query API"); each endpoint
names the few extra parameters it also takes (limit, cursor, group_by...). Anything else
is a 400 naming it, so a typo such as `latency_gt=100` is not silently ignored.

The number of filters is bounded: each property filter is a subquery, and a few hundred
of them made PostgreSQL plan for seconds and SQLite refuse the statement.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from heliograph.analytics.conditions import Condition, Node, condition
from heliograph.asgi import is_whole_number
from heliograph.errors import BadRequest
from heliograph.filter_names import (  # noqa: F401  (part of this module's vocabulary)
    EQUALITY_KEYS,
    MAX_PROPERTY_FILTERS,
    MAX_VALUE_CHARS,
    PROPERTY_PREFIX,
)

# Comparison filters in a query string: `<field>_<op>=<value>`, e.g. latency_gt=100.
COMPARISON_FIELDS = ("latency", "ttft", "cost", "tokens", "prompt_tokens",
                     "completion_tokens", "status", "created_at")
COMPARISON_OPS = ("gt", "gte", "lt", "lte", "ne")
COMPARISON_KEYS = frozenset(f"{field}_{op}" for field in COMPARISON_FIELDS
                            for op in COMPARISON_OPS)
FILTER_KEYS = frozenset((*EQUALITY_KEYS, "since", "until", "q", *COMPARISON_KEYS))
MAX_QUERY_PARAMETERS = 50


@dataclass
class RequestFilter:
    """Filters shared by /api/v1/requests, /metrics, /users and /ratelimits."""

    model: str | None = None
    provider: str | None = None
    status: int | None = None
    user_id: str | None = None
    session_id: str | None = None
    cache: str | None = None            # "hit" | "miss"
    cache_entry: str | None = None      # one cache entry's records (records.cache_entry)
    properties: dict[str, str] = field(default_factory=dict)  # names lower-cased
    since: str | None = None            # ISO 8601 UTC, inclusive
    until: str | None = None            # ISO 8601 UTC, exclusive
    q: str | None = None                # substring of request or response body
    # Further conditions, all of which must hold (analytics/conditions.py): comparisons
    # and Helicone's filter trees. Only the raw rows can answer them (not rollups).
    conditions: list[Node] = field(default_factory=list)


def normalize_timestamp(value: str) -> str:
    """Any ISO 8601 form → the stored form ('YYYY-MM-DDTHH:MM:SS.ffffffZ', UTC), so that
    the string comparison on created_at is a time comparison. No offset means UTC."""
    try:
        moment = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError(f"invalid timestamp {value!r}: use ISO 8601, e.g. "
                         "2024-05-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_parameters(query: list[tuple[str, str]], allowed: Iterable[str] = (),
                     properties: bool = False) -> None:
    """400 for a parameter the endpoint does not take, or for too many of them.
    properties: whether property.<name> filters are taken."""
    if len(query) > MAX_QUERY_PARAMETERS:
        raise BadRequest(f"too many query parameters ({len(query)}): at most "
                         f"{MAX_QUERY_PARAMETERS}", code="too_many_filters")
    known = set(allowed)
    unknown = sorted({name for name, _ in query if name not in known
                      and not (properties and name.startswith(PROPERTY_PREFIX))})
    if unknown:
        # The comparisons are listed as one pattern, not forty names.
        listed = sorted(known - COMPARISON_KEYS) + (
            [f"<{'|'.join(COMPARISON_FIELDS)}>_<{'|'.join(COMPARISON_OPS)}>"]
            if known & COMPARISON_KEYS else [])
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}"
                         + (f"; this endpoint takes {', '.join(listed)}"
                            + (", property.<Name>" if properties else "")
                            if known else "; this endpoint takes none"),
                         code="unknown_parameter")


def parse_filter(query: list[tuple[str, str]], extra: Iterable[str] = ()) -> RequestFilter:
    """The RequestFilter a query string asks for. `extra`: the endpoint's own parameters
    (read by the caller), accepted here; anything else that is not a filter is a 400."""
    extra = set(extra)
    check_parameters(query, FILTER_KEYS | extra, properties=True)
    flt = RequestFilter()
    for name, value in query:
        if name in extra:
            continue
        if len(value) > MAX_VALUE_CHARS:
            raise BadRequest(f"{name} is longer than {MAX_VALUE_CHARS} characters")
        if name in COMPARISON_KEYS:
            flt.conditions.append(_comparison(name, value))
        elif name.startswith(PROPERTY_PREFIX):
            prop = name[len(PROPERTY_PREFIX):].lower()
            if not prop:
                raise BadRequest("property filters need a name: property.<Name>=<value>")
            flt.properties[prop] = value
        elif name == "status":
            if not is_whole_number(value) or not 100 <= int(value) <= 599:
                raise BadRequest(f"status must be an HTTP status code, got {value!r}")
            flt.status = int(value)
        elif name == "cache":
            if value not in ("hit", "miss"):
                raise BadRequest("cache must be 'hit' or 'miss'")
            flt.cache = value
        elif name in ("since", "until"):
            try:
                setattr(flt, name, normalize_timestamp(value))
            except ValueError:
                raise BadRequest(f"{name} must be an ISO 8601 timestamp, got {value!r}"
                                 ) from None
        else:
            setattr(flt, name, value)
    if len(flt.properties) > MAX_PROPERTY_FILTERS:
        raise BadRequest(f"too many property filters ({len(flt.properties)}): at most "
                         f"{MAX_PROPERTY_FILTERS}", code="too_many_filters")
    return flt


def _comparison(name: str, value: str) -> Condition:
    """`latency_gt=100` → Condition("latency", "gt", 100.0); a clear 400 for a value that
    is not a number (or, for created_at, a timestamp)."""
    field_name, _, op = name.rpartition("_")
    if field_name != "created_at":
        try:
            number = float(value)
        except ValueError:
            raise BadRequest(f"{name} must be a number, got {value!r}") from None
        return condition(field_name, op, number)
    return condition(field_name, op, value)
