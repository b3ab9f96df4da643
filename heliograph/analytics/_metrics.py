"""/api/v1/metrics and the overview, answered from rollups where they can be (_grouped).

Which family answers: the main rollup (model, provider, status, cache) for those groups and
filters and for time series; a property's rollup for `property.<name>` (and a time series
filtered by one property); the per-user rollup for `user_id`. Records a family leaves out
(no user, no such property) are its window's total minus the groups it holds.
"""

from __future__ import annotations

from heliograph.analytics import _aggregate
from heliograph.analytics._grouped import (
    MAIN,
    PROPERTY,
    TOTALS,
    USER,
    Grouping,
    Plan,
    SharedEdges,
    active_fields,
    collect,
    merge,
    shared_edges,
    window_total,
)
from heliograph.analytics._narrow import Narrow
from heliograph.analytics._packed import Packing
from heliograph.analytics._totals import ROLLUP_COLUMNS
from heliograph.analytics.filters import RequestFilter

_HOUR_OF = "SUBSTR(r.created_at, 1, 13)"   # the hourly rollup's bucket, from a raw row
_BOTH = ("day", "hour")
# Per user: dekads (thirds of a month) where they fit, then days and hours.
_PER_USER = ("dekad", "day", "hour")


def choose(kind: str, detail: str, flt: RequestFilter, use_rollups: bool = True
           ) -> tuple[Plan, Grouping, bool]:
    """(plan, grouping, whether the null group is the total minus the groups)."""
    fields = active_fields(flt)
    props = flt.properties
    if use_rollups:
        main_ok = fields <= set(MAIN.filters)
        if kind == "time":
            grains = ("hour",) if detail == "hour" else _BOTH
            by_bucket = Grouping(("bucket",), (_HOUR_OF,))
            if not fields:
                return Plan(TOTALS, grains), by_bucket, False
            if main_ok:
                return Plan(MAIN, grains), by_bucket, False
            if fields == {"properties"} and len(props) == 1:
                ((name, value),) = props.items()
                return Plan(PROPERTY, grains, name, value), by_bucket, False
            if fields == {"user_id"}:
                return Plan(USER, grains), by_bucket, False
        elif kind == "dimension" and detail in ("model", "provider") and main_ok:
            return Plan(MAIN, _BOTH), Grouping((detail,), (f"r.{detail}",)), False
        elif kind == "dimension" and detail == "user_id" and fields <= {"user_id"}:
            return (Plan(USER, _PER_USER), Grouping(("user_id",), ("r.user_id",)),
                    flt.user_id is None)
        elif kind == "property" and fields <= {"properties"} and set(props) <= {detail}:
            wanted = props.get(detail)
            return (Plan(PROPERTY, _BOTH, detail, wanted), Grouping(("value",), ("g.value",)),
                    wanted is None)
    if kind == "property":
        return Plan(None), Grouping(raw_key=("g.value",), join="left",
                                    property_name=detail), False
    return Plan(None), Grouping(raw_key=(_HOUR_OF if kind == "time" else f"r.{detail}",)), False


def metrics(reader, organization: str, flt: RequestFilter, group_by: str,
            edges: SharedEdges | None = None) -> dict:
    kind, detail = _aggregate.parse_group_by(group_by)
    plan, grouping, null_is_rest = choose(kind, detail, flt, reader.use_rollups)
    total, columns, narrow, packing = None, ROLLUP_COLUMNS, None, None
    if null_is_rest:
        # The window's total first (the rest group needs it anyway): the many groups
        # (5,000 users) are then read without the columns none of them can need,
        # mostly latency bins no record of the window fell in, and kept as read.
        total = window_total(reader, organization, flt)
        columns = total.shown_columns()
        narrow = Narrow(columns)
        if reader.dialect.name == "sqlite":
            packing = Packing(columns, total)
    found = collect(reader, organization, flt, plan, grouping, edges, columns, narrow,
                    packing)
    groups: dict = {}
    for key, totals in found.items():
        if kind == "time":
            key = _aggregate.TIME_BUCKETS[detail](key)
        elif key == "":   # rollups keep a missing value as ''
            key = None
            if type(totals) is tuple:   # to be merged with the rest below
                totals = narrow.totals(totals)  # type: ignore[union-attr]
        groups[key] = merge([groups[key], totals]) if key in groups else totals
    if total is not None:
        assert narrow is not None
        rest = total.subtract(narrow.merge(groups.values()))
        if rest.requests > 0:
            groups[None] = merge([groups[None], rest]) if None in groups else rest
    else:
        total = merge(list(groups.values()))
    data = [{"key": key, **_shown(narrow, totals)} for key, totals in groups.items()
            if _requests(narrow, totals) > 0]
    if kind == "time":
        data.sort(key=lambda g: g["key"])
    else:  # biggest first; ties by key, null last, so the order is stable
        data.sort(key=lambda g: (-g["requests"], g["key"] is None, g["key"] or ""))
    return {"data": data, "total": total.metrics()}


TOP = 10


def overview(reader, organization: str, flt: RequestFilter) -> dict:
    """What the dashboard's first page shows: totals (spend, requests, cost per request,
    latency p50/p95, error rate, cache savings), cost by day, the top models and
    providers. Three grouped queries, each from rollups when the filter allows."""
    groupings = ("day", "model", "provider")
    edges = _overview_edges(reader, organization, flt, groupings)
    by_day, by_model, by_provider = (metrics(reader, organization, flt, group_by, edges)
                                     for group_by in groupings)
    total = by_model["total"]
    requests = total["requests"]
    return {
        "total": {**total, "cost_per_request_usd":
                  total["cost_usd"] / requests if requests else None},
        "by_day": by_day["data"],
        "by_model": by_model["data"][:TOP],
        "by_provider": by_provider["data"][:TOP],
    }


def _overview_edges(reader, organization: str, flt: RequestFilter,
                    groupings: tuple[str, ...]) -> SharedEdges | None:
    """The window's raw edges read once for all the overview's groupings, where every
    one of them is answered from the main rollups over the same pieces (else None: each
    reads its own, as metrics() alone does)."""
    chosen = [choose(*_aggregate.parse_group_by(g), flt, reader.use_rollups)[:2]
              for g in groupings]
    grains = chosen[0][0].grains
    keys = tuple(grouping.raw_key[0] for _plan, grouping in chosen if grouping.raw_key)
    edges = SharedEdges(grains, keys, [])
    if len(keys) != len(chosen) or not all(edges.serves(*pair) for pair in chosen):
        return None
    return shared_edges(reader, organization, flt, grains, keys)


def _shown(narrow: Narrow | None, group) -> dict:
    """A group's metrics, kept as a Narrow row or as a Totals."""
    return narrow.metrics(group) if narrow is not None and type(group) is tuple \
        else group.metrics()


def _requests(narrow: Narrow | None, group) -> int:
    return narrow.requests(group) if narrow is not None and type(group) is tuple \
        else group.requests
