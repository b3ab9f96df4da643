"""What is left in Python over request rows: group_by parsing and time buckets (shared
with the rollup queries) and one session's tree (the rate-limit report is in
_ratelimits). Totals over many rows are summed by the database (see _grouped and
_totals)."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable

DIMENSION_GROUPS = ("model", "provider", "user_id", "session_id")


def _week_start(created_at: str) -> str:
    day = _dt.date.fromisoformat(created_at[:10])
    return (day - _dt.timedelta(days=day.weekday())).isoformat()  # ISO weeks start Monday


# created_at is 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC), so buckets are slices of it.
TIME_BUCKETS: dict[str, Callable[[str], str]] = {
    "hour": lambda ts: ts[:13] + ":00Z",
    "day": lambda ts: ts[:10],
    "week": _week_start,
    "month": lambda ts: ts[:7],
}


def parse_group_by(group_by: str) -> tuple[str, str]:
    """("dimension", column) | ("property", lower-cased name) | ("time", unit).
    ValueError for anything else: the API turns it into a 400."""
    if group_by in DIMENSION_GROUPS:
        return "dimension", group_by
    if group_by in TIME_BUCKETS:
        return "time", group_by
    if group_by.startswith("property.") and len(group_by) > len("property."):
        return "property", group_by[len("property."):].lower()
    allowed = ", ".join((*DIMENSION_GROUPS, "property.<name>", *TIME_BUCKETS))
    raise ValueError(f"unknown group_by {group_by!r}: use one of {allowed}")


def p95_nearest_rank(values: list[float]) -> float | None:
    """The smallest value with at least 95% of values at or below it (exact, for a list
    in hand; the API's percentiles come from the rollups' histograms, _totals.py)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def _record_cost(rec: dict) -> float:
    return rec["cost_usd"] if rec["cost_known"] and rec["cost_usd"] is not None else 0.0


def _record_tokens(rec: dict) -> int:
    if rec["total_tokens"] is not None:
        return rec["total_tokens"]
    return (rec["prompt_tokens"] or 0) + (rec["completion_tokens"] or 0)


def _new_node(path: str, name: str) -> dict:
    return {"path": path, "name": name, "requests": [], "children": {}}


def _finish_node(node: dict) -> dict:
    """Children dict → list, and totals over the node and all its descendants."""
    children = [_finish_node(child) for child in node["children"].values()]
    own = node["requests"]
    return {
        "path": node["path"],
        "name": node["name"],
        "requests": own,
        "children": children,
        "cost_usd": sum(map(_record_cost, own)) + sum(c["cost_usd"] for c in children),
        "total_tokens": sum(map(_record_tokens, own)) + sum(c["total_tokens"] for c in children),
        "latency_ms": (sum(r["latency_ms"] or 0 for r in own)
                       + sum(c["latency_ms"] for c in children)),
    }


def session_tree(session_id: str, records: list[dict]) -> dict | None:
    """records: the session's records oldest first (bodies already dropped).

    session_path "/a/b" puts a record in node b, a child of top-level node a; nodes appear
    in the order of their first request. Records without a path go in a top-level "/" node.
    """
    if not records:
        return None
    top: dict[str, dict] = {}
    for rec in records:
        segments = [s for s in (rec["session_path"] or "").split("/") if s]
        if not segments:
            node = top.setdefault("/", _new_node("/", "/"))
        else:
            siblings, path = top, ""
            for segment in segments:
                path += "/" + segment
                node = siblings.setdefault(segment, _new_node(path, segment))
                siblings = node["children"]
        node["requests"].append(rec)
    tree = [_finish_node(node) for node in top.values()]
    name = next((r["session_name"] for r in records if r["session_name"]), None)
    return {
        "session_id": session_id,
        "name": name,
        "requests": len(records),
        "cost_usd": sum(n["cost_usd"] for n in tree),
        "total_tokens": sum(n["total_tokens"] for n in tree),
        "latency_ms": sum(n["latency_ms"] for n in tree),
        "tree": tree,
    }
