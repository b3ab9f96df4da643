"""What is left in Python over request rows: group_by parsing and time buckets (shared
with the rollup queries), one session's tree, and the rate-limit report. Totals over many
rows are summed by the database (see _grouped and _totals)."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Iterable

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


# Attempts are stored as orjson writes them (no spaces): a record with a 429 attempt
# holds this text.
ATTEMPT_429_PATTERN = '%"status":429%'


def ratelimits_from_rows(rows: Iterable[tuple]) -> dict:
    """Rows (provider, model, created_at, status, ratelimit_json, attempts_json), oldest
    first. A 429 is counted for the provider and model of the attempt that got it; a
    record without attempts counts by its own status."""
    import orjson

    groups: dict[tuple[str, str], dict] = {}

    def group_of(provider: str, model: str) -> dict:
        return groups.setdefault((provider, model), {
            "provider": provider, "model": model, "latest": None, "latest_at": None,
            "requests_429": 0, "by_hour": {}})

    def count_429(group: dict, created_at: str) -> None:
        group["requests_429"] += 1
        hour = created_at[:13] + ":00Z"
        group["by_hour"][hour] = group["by_hour"].get(hour, 0) + 1

    # Most rows only report limits: keep each group's latest report as text and parse it
    # once at the end; parse attempts only where one of them can be a 429.
    latest: dict[tuple[str, str], str] = {}
    for provider, model, created_at, status, ratelimit_json, attempts_json in rows:
        if ratelimit_json:
            latest[(provider, model)] = ratelimit_json
            group_of(provider, model)["latest_at"] = created_at
        has_attempts = bool(attempts_json) and attempts_json != "[]"
        if not has_attempts:
            if status == 429:
                count_429(group_of(provider, model), created_at)
            continue
        if ATTEMPT_429_PATTERN.strip("%") not in attempts_json:
            continue
        for attempt in orjson.loads(attempts_json):
            if isinstance(attempt, dict) and attempt.get("status") == 429:
                count_429(group_of(attempt.get("provider") or provider,
                                   attempt.get("model") or model), created_at)
    for key, text in latest.items():
        groups[key]["latest"] = orjson.loads(text)
    data = []
    for group in groups.values():
        group["rate_limited_over_time"] = [{"key": hour, "count": count}
                                           for hour, count in sorted(group.pop("by_hour").items())]
        data.append(group)
    data.sort(key=lambda g: (g["provider"] or "", g["model"] or ""))
    return {"data": data}
