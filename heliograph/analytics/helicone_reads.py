"""The reads behind Helicone's query API (api/helicone.py): requests sorted and paged by
offset, sessions and users summarised in SQL. Each takes the Analytics reader and runs on
its threads (`gw.analytics.run(requests_page, gw.analytics, ...)`); every query goes
through compile_filter, so it is scoped to the organization and honours the conditions.
"""

from __future__ import annotations

from typing import Any

from heliograph.analytics._where import compile_filter
from heliograph.analytics.filters import RequestFilter
from heliograph.analytics.reader import _RECORD_COLUMNS, _WITH_BODIES, MAX_PAGE
from heliograph.store._schema import row_to_record

# Helicone's sort keys → columns.
SORT_COLUMNS = {"created_at": "created_at", "latency": "latency_ms",
                "total_tokens": "total_tokens", "prompt_tokens": "prompt_tokens",
                "completion_tokens": "completion_tokens", "cost": "cost_usd",
                "user_id": "user_id", "body_model": "model_used"}


def requests_page(analytics: Any, organization: str, flt: RequestFilter, sort: str,
                  descending: bool, offset: int, limit: int) -> list[dict]:
    """Records with bodies, ordered by SORT_COLUMNS[sort] (missing values last), then id."""
    column = SORT_COLUMNS[sort]
    where, params = compile_filter(organization, flt, analytics.dialect.like_ci)
    direction = "DESC" if descending else "ASC"
    rows = analytics._fetchall(
        f"SELECT {_RECORD_COLUMNS}{_WITH_BODIES} WHERE {where}"
        f" ORDER BY (r.{column} IS NULL), r.{column} {direction}, r.id {direction}"
        " LIMIT ? OFFSET ?", (*params, min(limit, MAX_PAGE), offset))
    return [row_to_record(row) for row in rows]


def session_summaries(analytics: Any, organization: str, flt: RequestFilter, offset: int,
                      limit: int) -> list[dict]:
    """Sessions with a matching record, latest activity first, in Helicone's shape."""
    where, params = compile_filter(organization, flt, analytics.dialect.like_ci)
    rows = analytics._fetchall(
        "SELECT r.session_id, MAX(r.session_name), MIN(r.created_at), MAX(r.created_at),"
        " SUM(r.cost_usd), COUNT(*), SUM(r.prompt_tokens), SUM(r.completion_tokens),"
        " SUM(r.total_tokens), AVG(r.latency_ms)"
        f" FROM requests r WHERE {where} AND r.session_id IS NOT NULL"
        " GROUP BY r.session_id ORDER BY MAX(r.created_at) DESC, r.session_id DESC"
        " LIMIT ? OFFSET ?", (*params, min(limit, MAX_PAGE), offset))
    return [{"session_id": sid, "session_name": name or "", "created_at": first,
             "latest_request_created_at": last, "total_cost": float(cost or 0),
             "total_requests": count, "prompt_tokens": int(prompt or 0),
             "completion_tokens": int(completion or 0), "total_tokens": int(total or 0),
             "avg_latency": float(latency or 0)}
            for sid, name, first, last, cost, count, prompt, completion, total, latency
            in rows]


def user_summaries(analytics: Any, organization: str, flt: RequestFilter) -> list[dict]:
    """Every user with a matching record, in the shape of Helicone's users_view."""
    where, params = compile_filter(organization, flt, analytics.dialect.like_ci)
    rows = analytics._fetchall(
        "SELECT r.user_id, COUNT(*), SUM(r.prompt_tokens), SUM(r.completion_tokens),"
        " SUM(r.total_tokens), SUM(r.cost_usd), MIN(r.created_at), MAX(r.created_at),"
        " COUNT(DISTINCT SUBSTR(r.created_at, 1, 10))"
        f" FROM requests r WHERE {where} AND r.user_id IS NOT NULL GROUP BY r.user_id",
        params)
    users = []
    for user_id, count, prompt, completion, total, cost, first, last, days in rows:
        # PostgreSQL sums integers as NUMERIC (Decimal): plain numbers for JSON.
        prompt, completion, total = int(prompt or 0), int(completion or 0), int(total or 0)
        cost = float(cost or 0)
        users.append({
            "id": user_id, "user_id": user_id, "total_requests": count,
            "total_prompt_tokens": prompt, "total_completion_tokens": completion,
            "cost": cost, "first_active": first, "last_active": last,
            "active_for": days,
            "average_requests_per_day_active": count / days if days else 0.0,
            "average_tokens_per_request": total / count if count else 0.0,
        })
    return users
