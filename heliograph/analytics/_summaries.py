"""Per-session and per-property summaries (per-user ones: _users.py): from their rollups
when the filter is one they keep (all time for sessions, any window for properties), else
aggregated by SQL over the filtered raw rows. Either way the database groups; Python only
formats the groups."""

from __future__ import annotations

from heliograph.analytics._grouped import PROPERTY, Grouping, Plan, active_fields, collect
from heliograph.analytics._where import compile_filter, decode_cursor, encode_cursor
from heliograph.analytics.filters import RequestFilter
from heliograph.store._rollups import SESSION_NAME_OFFSET, SUM_COLUMNS
from heliograph.store._schema_v17 import MINUTE_CHARS

_COST = SUM_COLUMNS["cost_usd"]
_NAME_KEY = ("MIN(CASE WHEN r.session_name IS NOT NULL"
             " THEN r.created_at || r.session_name END)")


# -- sessions -----------------------------------------------------------------------
def sessions(reader, organization: str, flt: RequestFilter, limit: int,
             cursor: str | None) -> tuple[list[dict], str | None]:
    """Newest activity first, keyset-paged on (last_at, session_id)."""
    after = decode_cursor(cursor) if cursor else None
    if reader.use_rollups and not active_fields(flt) and not (flt.since or flt.until):
        by_minute = reader.dialect.name == "postgres"
        sql = ("SELECT session_id, name_key, requests, cost_usd, first_at, last_at"
               " FROM rollup_sessions WHERE organization = ?")
        params: list = [organization]
        if after:
            # Where the index walk starts: the OR below is no range for either planner,
            # which would otherwise read every newer session again for a later page.
            sql += (f" AND last_minute <= substr(?, 1, {MINUTE_CHARS})" if by_minute
                    else " AND last_at <= ?")
            params.append(after[0])
            sql += " AND (last_at < ? OR (last_at = ? AND session_id < ?))"
            params += [after[0], after[0], after[1]]
        # PostgreSQL indexes the minute of last_at, not last_at (store/_schema_v17.py:
        # its updates stay HOT): the minutes newest first, each minute's sessions sorted.
        sql += (" ORDER BY last_minute DESC, last_at DESC, session_id DESC LIMIT ?"
                if by_minute else " ORDER BY last_at DESC, session_id DESC LIMIT ?")
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
