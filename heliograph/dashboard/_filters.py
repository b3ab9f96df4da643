"""The filters a page's URL holds: the query API's own (model, provider, status, user_id,
session_id, cache, property.<Name>, since, until, q) plus `period` (24h, 7d, 30d, all),
a shorthand for `since`. Parsed by the query API's parser, so a bad value is the same
clear 400 here as there, and a view's URL can be shared."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from typing import Any

from heliograph.analytics.filters import PROPERTY_PREFIX, RequestFilter, parse_filter
from heliograph.errors import BadRequest

PERIODS = {"24h": _dt.timedelta(hours=24), "7d": _dt.timedelta(days=7),
           "30d": _dt.timedelta(days=30), "all": None}


@dataclass
class ViewFilters:
    flt: RequestFilter
    period: str                         # a PERIODS key, or "custom" when since/until given
    pairs: list[tuple[str, str]]        # the URL's filter parameters, to carry in links
    own: dict[str, str]                 # the page's own parameters (sort, cursor, ...)

    def without(self, name: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.pairs if k != name]

    def with_(self, name: str, value: str) -> list[tuple[str, str]]:
        return [*self.without(name), (name, value)]

    @property
    def properties(self) -> list[tuple[str, str]]:
        return [(k[len(PROPERTY_PREFIX):], v) for k, v in self.pairs
                if k.startswith(PROPERTY_PREFIX)]

    def value(self, name: str) -> str:
        return next((v for k, v in self.pairs if k == name), "")

    def narrowed(self, **changes: Any) -> RequestFilter:
        return replace(self.flt, **changes)


def view_filters(query: list[tuple[str, str]], own: tuple[str, ...] = (),
                 default_period: str = "all") -> ViewFilters:
    """Empty values are dropped (an empty form field means "any")."""
    query = [(k, v) for k, v in query if v != ""]
    page_params = {k: v for k, v in query if k in own}
    period = next((v for k, v in query if k == "period"), None)
    flt = parse_filter(query, (*own, "period"))
    pairs = [(k, v) for k, v in query if k not in own and k != "period"]
    if period is not None and period not in PERIODS:
        raise BadRequest(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    if flt.since or flt.until:
        period = "custom"
    else:
        period = period or default_period
        span = PERIODS[period]
        if span is not None:
            # From the start of an hour: whole hours are what rollups (#16) answer from.
            hour = _dt.datetime.now(_dt.UTC).replace(minute=0, second=0, microsecond=0)
            flt.since = (hour - span).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if period != default_period:
            pairs.append(("period", period))
    return ViewFilters(flt, period, pairs, page_params)
