"""Per-user, per-session and per-property summaries: from their rollups when the filter is
one they keep (all time for users and sessions, any window for properties), else
aggregated by SQL over the filtered raw rows. Either way the database groups; Python only
formats the groups."""

from __future__ import annotations

from heliograph.analytics._grouped import PROPERTY, Grouping, Plan, active_fields, collect
from heliograph.analytics._totals import ROLLUP_SELECT_FLAT, Totals
from heliograph.analytics._where import compile_filter, decode_cursor, encode_cursor
from heliograph.analytics.filters import RequestFilter
from heliograph.store._rollups import MIN_MAX_COLUMNS, SESSION_NAME_OFFSET, SUM_COLUMNS

_RAW_SUMS = ", ".join([*SUM_COLUMNS.values(),
                       *(f"{fn}({expr})" for fn, expr in MIN_MAX_COLUMNS.values())])
_COST = SUM_COLUMNS["cost_usd"]
_NAME_KEY = ("MIN(CASE WHEN r.session_name IS NOT NULL"
             " THEN r.created_at || r.session_name END)")


# -- users --------------------------------------------------------------------------
def users(reader, organization: str, flt: RequestFilter) -> list[dict]:
    """Most active first: requests, errors, cost, tokens, average latency, first and last
    seen, requests per model."""
    fields = active_fields(flt)
    scope, params = "organization = ?", [organization]
    if reader.use_rollups and fields <= {"user_id"} and not (flt.since or flt.until):
        if flt.user_id is not None:
            scope += " AND user_id = ?"
            params.append(flt.user_id)
        rows = reader._fetchall(
            f"SELECT user_id, first_at, last_at, {ROLLUP_SELECT_FLAT} FROM rollup_users"
            f" WHERE {scope} GROUP BY user_id, first_at, last_at", params)
        models = reader._fetchall("SELECT user_id, model, requests FROM rollup_user_models"
                                  f" WHERE {scope} AND model <> ''", params)
    else:
        where, params = compile_filter(organization, flt, reader.dialect.like_ci)
        where += " AND r.user_id IS NOT NULL"
        rows = reader._fetchall(
            "SELECT r.user_id, MIN(r.created_at), MAX(r.created_at),"
            f" {_RAW_SUMS} FROM requests r WHERE {where} GROUP BY r.user_id", params)
        models = reader._fetchall(
            "SELECT r.user_id, r.model, COUNT(*) FROM requests r"
            f" WHERE {where} AND r.model IS NOT NULL GROUP BY r.user_id, r.model", params)
    by_user: dict[str, dict[str, int]] = {}
    for user_id, model, count in models:
        by_user.setdefault(user_id, {})[model] = int(count)
    result = []
    for user_id, first_at, last_at, *sums in rows:
        totals = Totals()
        totals.add_rollup(sums)
        m = totals.metrics()
        result.append({
            "user_id": user_id,
            **{k: m[k] for k in ("requests", "errors", "error_rate", "cost_usd",
                                 "prompt_tokens", "completion_tokens", "avg_latency_ms")},
            "first_seen": first_at,
            "last_seen": last_at,
            "models": dict(sorted(by_user.get(user_id, {}).items(),
                                  key=lambda kv: (-kv[1], kv[0]))),
        })
    result.sort(key=lambda u: (-u["requests"], u["user_id"]))
    return result


# -- sessions -----------------------------------------------------------------------
def sessions(reader, organization: str, flt: RequestFilter, limit: int,
             cursor: str | None) -> tuple[list[dict], str | None]:
    """Newest activity first, keyset-paged on (last_at, session_id)."""
    after = decode_cursor(cursor) if cursor else None
    if reader.use_rollups and not active_fields(flt) and not (flt.since or flt.until):
        sql = ("SELECT session_id, name_key, requests, cost_usd, first_at, last_at"
               " FROM rollup_sessions WHERE organization = ?")
        params: list = [organization]
        if after:
            sql += " AND (last_at < ? OR (last_at = ? AND session_id < ?))"
            params += [after[0], after[0], after[1]]
        sql += " ORDER BY last_at DESC, session_id DESC LIMIT ?"
    else:
        where, params = compile_filter(organization, flt, reader.dialect.like_ci)
        sql = (f"SELECT r.session_id, {_NAME_KEY}, COUNT(*), {_COST},"
               " MIN(r.created_at), MAX(r.created_at) FROM requests r"
               f" WHERE {where} AND r.session_id IS NOT NULL GROUP BY r.session_id")
        if after:
            sql += (" HAVING MAX(r.created_at) < ? OR (MAX(r.created_at) = ?"
                    " AND r.session_id < ?)")
            params += [after[0], after[0], after[1]]
        sql += " ORDER BY MAX(r.created_at) DESC, r.session_id DESC LIMIT ?"
    rows = reader._fetchall(sql, [*params, limit + 1])
    page = [{"session_id": session_id,
             "name": name_key[SESSION_NAME_OFFSET:] if name_key else None,
             "requests": int(requests), "cost_usd": float(cost or 0.0),
             "first_at": first_at, "last_at": last_at}
            for session_id, name_key, requests, cost, first_at, last_at in rows[:limit]]
    more = len(rows) > limit
    return page, (encode_cursor(page[-1]["last_at"], page[-1]["session_id"])
                  if more else None)


# -- properties ---------------------------------------------------------------------
def properties(reader, organization: str, flt: RequestFilter, name: str | None,
               values_limit: int) -> dict:
    """Property names, most used first, each with its requests, cost and most used values
    (up to values_limit; `distinct_values` says how many there are)."""
    name = name.lower() if name is not None else None
    if reader.use_rollups and not active_fields(flt):
        plan = Plan(PROPERTY, ("day", "hour"), name)
        grouping = Grouping(("name", "value"), ("g.name", "g.value"))
    else:
        plan = Plan(None)
        grouping = Grouping(raw_key=("g.name", "g.value"), join="inner", property_name=name)
    found = collect(reader, organization, flt, plan, grouping)
    names: dict[str, list] = {}
    for (prop, value), totals in found.items():
        if totals.requests > 0:
            names.setdefault(prop, []).append(
                {"value": value, "requests": totals.requests,
                 "cost_usd": totals.get("cost_usd")})
    data = []
    for prop, values in names.items():
        values.sort(key=lambda v: (-v["requests"], v["value"]))
        data.append({"name": prop, "requests": sum(v["requests"] for v in values),
                     "cost_usd": sum(v["cost_usd"] for v in values),
                     "distinct_values": len(values), "values": values[:values_limit]})
    data.sort(key=lambda p: (-p["requests"], p["name"]))
    return {"data": data}
