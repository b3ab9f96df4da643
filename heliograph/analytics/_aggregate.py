"""Aggregations over selected request rows: metrics by group, per-user summaries, the
session tree. Pure Python over plain tuples, so both SQL stores give identical numbers
(SQLite has no percentile function, and the two databases round differently).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Iterable

# Columns (of requests r) each metrics/users row starts with, in this order.
AGGREGATE_COLUMNS: tuple[str, ...] = (
    "status", "cost_usd", "cost_known", "prompt_tokens", "completion_tokens",
    "latency_ms", "cache")
USER_COLUMNS: tuple[str, ...] = AGGREGATE_COLUMNS + ("user_id", "model", "created_at")

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
    """The smallest value with at least 95% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


class Aggregate:
    """Running totals for one group; add() takes a row's AGGREGATE_COLUMNS."""

    __slots__ = ("requests", "errors", "cost_usd", "prompt_tokens", "completion_tokens",
                 "latencies", "cache_hits")

    def __init__(self) -> None:
        self.requests = self.errors = self.cache_hits = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd = 0.0
        self.latencies: list[float] = []

    def add(self, status, cost_usd, cost_known, prompt_tokens, completion_tokens,
            latency_ms, cache) -> None:
        self.requests += 1
        if status is not None and status >= 400:
            self.errors += 1
        # An unpriced request (cost_known false) must not count as free.
        if cost_known and cost_usd is not None:
            self.cost_usd += cost_usd
        self.prompt_tokens += prompt_tokens or 0
        self.completion_tokens += completion_tokens or 0
        if latency_ms is not None:
            self.latencies.append(latency_ms)
        if cache == "hit":
            self.cache_hits += 1

    def avg_latency_ms(self) -> float | None:
        return math.fsum(self.latencies) / len(self.latencies) if self.latencies else None

    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def metrics(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate(),
            "cost_usd": self.cost_usd,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "avg_latency_ms": self.avg_latency_ms(),
            "p95_latency_ms": p95_nearest_rank(self.latencies),
            "cache_hits": self.cache_hits,
        }


def metrics_from_rows(rows: Iterable[tuple], kind: str, unit: str) -> dict:
    """rows: AGGREGATE_COLUMNS + one group value (created_at for time groups)."""
    bucket = TIME_BUCKETS[unit] if kind == "time" else None
    groups: dict = {}
    total = Aggregate()
    n = len(AGGREGATE_COLUMNS)
    for row in rows:
        values, key = row[:n], row[n]
        if bucket is not None:
            key = bucket(key)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Aggregate()
        group.add(*values)
        total.add(*values)
    data = [{"key": key, **agg.metrics()} for key, agg in groups.items()]
    if kind == "time":
        data.sort(key=lambda g: g["key"])
    else:  # biggest first; ties by key, null last, so the order is stable
        data.sort(key=lambda g: (-g["requests"], g["key"] is None, g["key"] or ""))
    return {"data": data, "total": total.metrics()}


def users_from_rows(rows: Iterable[tuple]) -> list[dict]:
    """rows: USER_COLUMNS, user_id never null. Most active users first."""
    n = len(AGGREGATE_COLUMNS)
    users: dict[str, dict] = {}
    for row in rows:
        user_id, model, created_at = row[n:]
        user = users.get(user_id)
        if user is None:
            user = users[user_id] = {"agg": Aggregate(), "first": created_at,
                                     "last": created_at, "models": {}}
        user["agg"].add(*row[:n])
        user["first"] = min(user["first"], created_at)
        user["last"] = max(user["last"], created_at)
        if model is not None:
            user["models"][model] = user["models"].get(model, 0) + 1
    result = []
    for user_id, user in users.items():
        agg: Aggregate = user["agg"]
        result.append({
            "user_id": user_id,
            "requests": agg.requests,
            "errors": agg.errors,
            "error_rate": agg.error_rate(),
            "cost_usd": agg.cost_usd,
            "prompt_tokens": agg.prompt_tokens,
            "completion_tokens": agg.completion_tokens,
            "avg_latency_ms": agg.avg_latency_ms(),
            "first_seen": user["first"],
            "last_seen": user["last"],
            "models": dict(sorted(user["models"].items(), key=lambda kv: (-kv[1], kv[0]))),
        })
    result.sort(key=lambda u: (-u["requests"], u["user_id"]))
    return result


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

    for provider, model, created_at, status, ratelimit_json, attempts_json in rows:
        group = group_of(provider, model)
        if ratelimit_json:
            group["latest"] = orjson.loads(ratelimit_json)
            group["latest_at"] = created_at
        attempts = orjson.loads(attempts_json) if attempts_json else []
        if not attempts and status == 429:
            count_429(group, created_at)
        for attempt in attempts:
            if isinstance(attempt, dict) and attempt.get("status") == 429:
                count_429(group_of(attempt.get("provider") or provider,
                                   attempt.get("model") or model), created_at)
    data = []
    for group in groups.values():
        group["rate_limited_over_time"] = [{"key": hour, "count": count}
                                           for hour, count in sorted(group.pop("by_hour").items())]
        data.append(group)
    data.sort(key=lambda g: (g["provider"] or "", g["model"] or ""))
    return {"data": data}


def sessions_from_rows(rows: Iterable[tuple]) -> list[dict]:
    """Rows (session_id, session_name, cost_usd, cost_known, created_at), session_id never
    null. Newest activity first (ties by session_id, descending, as the cursor pages)."""
    sessions: dict[str, dict] = {}
    for session_id, name, cost_usd, cost_known, created_at in rows:
        session = sessions.get(session_id)
        if session is None:
            session = sessions[session_id] = {
                "session_id": session_id, "name": None, "requests": 0, "cost_usd": 0.0,
                "first_at": created_at, "last_at": created_at}
        session["requests"] += 1
        if cost_known and cost_usd is not None:
            session["cost_usd"] += cost_usd
        if name and (session["name"] is None or created_at < session["first_at"]):
            session["name"] = name  # the earliest name given, as the session tree reports
        session["first_at"] = min(session["first_at"], created_at)
        session["last_at"] = max(session["last_at"], created_at)
    return sorted(sessions.values(), key=lambda s: (s["last_at"], s["session_id"]),
                  reverse=True)
