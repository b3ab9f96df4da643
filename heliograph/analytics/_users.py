"""Per-user summaries (/api/v1/users, the dashboard's Users page): summed, sorted and
keyset-paged by the database, so a page of 50 costs one grouped query over rollup rows and
Python formats only those 50 (on 5,000 users, building and sending every one took ~0.5 s).

Where the numbers come from, by filter:
  all time, at most a user_id       rollup_users (one row per user)
  a window, at most a user_id       rollup_user_dekad for whole thirds of a month,
                                    rollup_user_daily for whole days, rollup_user_hourly for
                                    whole hours, raw rows for the minutes at either edge
  anything else (model, q, ...)     raw rows, grouped by SQL
Each source gives the same columns per user; a UNION ALL of them is summed per user, so the
answer is the raw rows' answer whichever sources take part.

Models per user are read for the page's users only, from the per user and model rollups
(rollup_user_model_daily / _hourly, migration 10) by the same pieces; counting them over
the page users' raw rows instead took 0.25-0.5 s for the top 50 users over 7-30 days.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json

from heliograph.analytics._grouped import active_fields, window_total
from heliograph.analytics._where import compile_filter
from heliograph.analytics._window import split
from heliograph.analytics.filters import RequestFilter
from heliograph.store._rollups import SUM_COLUMNS

# What a user row holds, summed over its sources (the names of _rollups.SUM_COLUMNS).
_SUMMED = ("requests", "errors", "cost_usd", "prompt_tokens", "completion_tokens",
           "latency_sum", "latency_count")
_ROLLUP_COLUMNS = ", ".join(("user_id", "first_at", "last_at", *_SUMMED))
# Aliased: a UNION ALL takes its column names from its first SELECT, which may be this.
_RAW_COLUMNS = ", ".join(("r.user_id AS user_id", "MIN(r.created_at) AS first_at",
                          "MAX(r.created_at) AS last_at",
                          *(f"{SUM_COLUMNS[c]} AS {c}" for c in _SUMMED)))
_TABLE = {"dekad": "rollup_user_dekad", "day": "rollup_user_daily",
          "hour": "rollup_user_hourly"}
_MODEL_TABLE = {"day": "rollup_user_model_daily", "hour": "rollup_user_model_hourly"}

# sort name (as the API takes it) → SQL over the summed columns, and its default order.
# A missing average latency sorts as -1: below every real one. Ratios are cast to the
# dialect's float so both databases compare (and hand back) the same kind of number.
SORTS: dict[str, str] = {
    "requests": "requests",
    "cost_usd": "cost_usd",
    "avg_latency_ms": ("CASE WHEN latency_count > 0"
                       " THEN CAST(latency_sum AS {float}) / latency_count ELSE -1 END"),
    "error_rate": "CAST(errors AS {float}) / requests",
    "last_seen": "last_at",
    "first_seen": "first_at",
    "user_id": "user_id",
}
DEFAULT_ORDER = {name: "asc" if name == "user_id" else "desc" for name in SORTS}


@dataclasses.dataclass(frozen=True)
class UserQuery:
    sort: str = "requests"
    order: str | None = None        # None: the sort's default (DEFAULT_ORDER)
    limit: int | None = None        # None: every user
    cursor: str | None = None

    def checked(self) -> UserQuery:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        order = self.order or DEFAULT_ORDER[self.sort]
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        return dataclasses.replace(self, order=order)


def encode_cursor(sort: str, order: str, value, user_id: str) -> str:
    raw = json.dumps([sort, order, value, user_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, order: str) -> tuple:
    """(sort value, user_id) after which the page starts. A cursor from another sort or
    order (or none of ours) is a ValueError: the caller's 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, got_order, value, user_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError):
        raise ValueError(f"invalid cursor {cursor!r}") from None
    if (got_sort, got_order) != (sort, order) or not isinstance(user_id, str):
        raise ValueError(f"invalid cursor {cursor!r} (not from this sort and order)")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid cursor {cursor!r}")
    return value, user_id


def _rollups_answer(reader, flt: RequestFilter) -> bool:
    return reader.use_rollups and active_fields(flt) <= {"user_id"}


def _sources(reader, organization: str, flt: RequestFilter) -> tuple[list[str], list]:
    """SELECTs of (user_id, first_at, last_at, _SUMMED...) per user and source, with their
    parameters in order."""
    if not _rollups_answer(reader, flt):
        return _raw_source(reader, organization, flt)
    selects: list[str] = []
    params: list = []
    pieces = split(flt.since, flt.until, tuple(_TABLE)) if (flt.since or flt.until) \
        else None
    if pieces is None:
        sql, args = _rollup_source("rollup_users", organization, flt.user_id, None, None)
        return [sql], args
    for piece in pieces:
        if piece.grain == "raw":
            window = dataclasses.replace(flt, since=piece.lo, until=piece.hi)
            sql_list, args = _raw_source(reader, organization, window)
        else:
            sql, args = _rollup_source(_TABLE[piece.grain], organization, flt.user_id,
                                       piece.lo, piece.hi)
            sql_list = [sql]
        selects += sql_list
        params += args
    return selects, params


def _rollup_source(table: str, organization: str, user_id: str | None, lo: str | None,
                   hi: str | None) -> tuple[str, list]:
    clauses, params = ["organization = ?"], [organization]
    if user_id is not None:
        clauses.append("user_id = ?")
        params.append(user_id)
    if lo is not None:
        clauses.append("bucket >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append("bucket < ?")
        params.append(hi)
    return f"SELECT {_ROLLUP_COLUMNS} FROM {table} WHERE {' AND '.join(clauses)}", params


def _raw_source(reader, organization: str, flt: RequestFilter) -> tuple[list[str], list]:
    where, params = compile_filter(organization, flt, reader.dialect.like_ci)
    return ([f"SELECT {_RAW_COLUMNS} FROM requests r WHERE {where}"
             " AND r.user_id IS NOT NULL GROUP BY r.user_id"], params)


def page(reader, organization: str, flt: RequestFilter, query: UserQuery
         ) -> tuple[list[dict], str | None]:
    """One page of users in the query's order (ties by user_id, ascending), and the
    cursor of the next page (None when this is the last)."""
    users, next_cursor, _all = _page(reader, organization, flt, query)
    return users, next_cursor


def _page(reader, organization: str, flt: RequestFilter, query: UserQuery,
          with_totals: bool = False) -> tuple[list[dict], str | None, tuple[int, float]]:
    """page(), and with_totals the (requests, cost) of every user in the filter, summed
    by the same query (a window over its groups) rather than a second pass."""
    query = query.checked()
    sort, order = query.sort, query.order
    assert order is not None
    selects, params = _sources(reader, organization, flt)
    sums = ", ".join(f"SUM({c}) AS {c}" for c in _SUMMED)
    key = SORTS[sort].format(float=reader.dialect.types["float"])
    grouped = (f"SELECT user_id, MIN(first_at) AS first_at, MAX(last_at) AS last_at, {sums}"
               f" FROM ({' UNION ALL '.join(selects)}) s GROUP BY user_id")
    over_all = (", SUM(requests) OVER () AS all_requests, SUM(cost_usd) OVER () AS all_cost"
                if with_totals else "")
    sql = f"SELECT * FROM (SELECT g.*, {key} AS sort_key{over_all} FROM ({grouped}) g) u"
    direction = "DESC" if order == "desc" else "ASC"
    if query.cursor:
        value, after_user = decode_cursor(query.cursor, sort, order)
        beyond = "<" if order == "desc" else ">"
        if sort == "user_id":
            sql += f" WHERE user_id {beyond} ?"
            params = [*params, after_user]
        else:
            sql += f" WHERE (sort_key {beyond} ? OR (sort_key = ? AND user_id > ?))"
            params = [*params, value, value, after_user]
    sql += f" ORDER BY sort_key {direction}"
    if sort != "user_id":
        sql += ", user_id ASC"
    if query.limit is not None:
        sql += " LIMIT ?"
        params = [*params, query.limit + 1]
    rows = reader._fetchall(sql, params)
    more = query.limit is not None and len(rows) > query.limit
    rows = rows[:query.limit] if query.limit is not None else rows
    users = [_user(row[:_SORT_AT + 1]) for row in rows]
    _add_models(reader, organization, flt, users)
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(sort, order, _plain(last[_SORT_AT]), last[0])
    everyone = ((int(rows[0][-2] or 0), float(rows[0][-1] or 0.0))
                if with_totals and rows else (0, 0.0))
    return users, next_cursor, everyone


_SORT_AT = 3 + len(_SUMMED)   # the sort value's place in a row (after id, first, last)


def _plain(value):
    """The sort value as JSON keeps it (drivers may hand back Decimal for a numeric)."""
    if isinstance(value, int | float | str):
        return value
    return float(value)


def _user(row) -> dict:
    (user_id, first_at, last_at, requests, errors, cost, prompt, completion,
     latency_sum, latency_count, _sort_key) = row
    requests, errors, latency_count = int(requests), int(errors or 0), int(latency_count or 0)
    return {"user_id": user_id, "requests": requests, "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "cost_usd": float(cost or 0.0), "prompt_tokens": int(prompt or 0),
            "completion_tokens": int(completion or 0),
            "avg_latency_ms": (float(latency_sum) / latency_count if latency_count else None),
            "first_seen": first_at, "last_seen": last_at, "models": {}}


def _add_models(reader, organization: str, flt: RequestFilter, users: list[dict]) -> None:
    """Each user's requests per model, most used first: for these users only."""
    if not users:
        return
    ids = [u["user_id"] for u in users]
    counts: dict[str, dict[str, int]] = {}
    for start in range(0, len(ids), 500):   # under SQLite's parameter limit
        chunk = ids[start:start + 500]
        for user_id, model, count, *_ in _by_user_and_model(reader, organization, flt, chunk):
            if model is not None:
                counts.setdefault(user_id, {})[model] = int(count)
    for user in users:
        found = counts.get(user["user_id"], {})
        user["models"] = dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


# What a user's page shows per model.
_MODEL_SUMS = ("requests", "errors", "cost_usd")


def _by_user_and_model(reader, organization: str, flt: RequestFilter, user_ids: list[str]
                       ) -> list[tuple]:
    """(user_id, model or None, requests, errors, cost_usd) per user and model, for these
    users' matching records: from the per user and model rollups (all time, or the
    window's days and hours) plus raw rows for a window's edges, or from raw rows when
    the filter is one they do not keep."""
    marks = ", ".join("?" * len(user_ids))
    selects: list[str] = []
    params: list = []

    def raw(window: RequestFilter) -> None:
        where, where_params = compile_filter(organization, window, reader.dialect.like_ci)
        sums = ", ".join(f"{SUM_COLUMNS[c]} AS {c}" for c in _MODEL_SUMS)
        selects.append(f"SELECT r.user_id AS user_id, r.model AS model, {sums}"
                       f" FROM requests r WHERE {where} AND r.user_id IN ({marks})"
                       " GROUP BY r.user_id, r.model")
        params.extend([*where_params, *user_ids])

    def rollup(table: str, lo: str | None, hi: str | None) -> None:
        # '' is how the rollups keep a missing model; NULL, as the raw rows have it.
        sql = (f"SELECT user_id, CASE WHEN model = '' THEN NULL ELSE model END AS model,"
               f" {', '.join(_MODEL_SUMS)} FROM {table}"
               f" WHERE organization = ? AND user_id IN ({marks})")
        params.extend([organization, *user_ids])
        for clause, bound in (("bucket >= ?", lo), ("bucket < ?", hi)):
            if bound is not None:
                sql += f" AND {clause}"
                params.append(bound)
        selects.append(sql)

    if not _rollups_answer(reader, flt):
        raw(flt)
    elif not (flt.since or flt.until):
        rollup("rollup_user_models", None, None)   # all time: one row per user and model
    else:
        for piece in split(flt.since, flt.until, ("day", "hour")):
            if piece.grain == "raw":
                raw(dataclasses.replace(flt, since=piece.lo, until=piece.hi))
            else:
                rollup(_MODEL_TABLE[piece.grain], piece.lo, piece.hi)
    sums = ", ".join(f"SUM({c})" for c in _MODEL_SUMS)
    return reader._fetchall(f"SELECT user_id, model, {sums}"
                            f" FROM ({' UNION ALL '.join(selects)}) s"
                            " GROUP BY user_id, model", params)


def models_of(reader, organization: str, flt: RequestFilter) -> list[dict]:
    """One user's (flt.user_id's) requests, errors, error rate and cost by model, most
    requests first (a missing model, None, last): the numbers metrics?group_by=model
    gives for those columns, from the per user and model rollups where they answer."""
    assert flt.user_id is not None
    rows = _by_user_and_model(reader, organization, flt, [flt.user_id])
    found = [{"key": model, "requests": int(requests), "errors": int(errors or 0),
              "error_rate": int(errors or 0) / int(requests) if requests else 0.0,
              "cost_usd": float(cost or 0.0)}
             for _user, model, requests, errors, cost in rows if requests]
    found.sort(key=lambda g: (-g["requests"], g["key"] is None, g["key"] or ""))
    return found


def cost_by_user(reader, organization: str, flt: RequestFilter, top: int) -> list[dict]:
    """The `top` users by cost, and the records without a user as one group keyed None,
    biggest first: [{"key", "requests", "cost_usd"}] — what metrics?group_by=user_id
    gives for these groups, without summing (and formatting) every user's histogram."""
    users, _, everyone = _page(reader, organization, flt, UserQuery("cost_usd", "desc", top),
                               with_totals=True)
    groups = [{"key": u["user_id"], "requests": u["requests"], "cost_usd": u["cost_usd"]}
              for u in users]
    requests, cost = _without_user(reader, organization, flt, everyone)
    if requests > 0:
        groups.append({"key": None, "requests": requests, "cost_usd": cost})
    groups.sort(key=lambda g: -g["cost_usd"])
    return groups[:top]


def _without_user(reader, organization: str, flt: RequestFilter,
                  with_user: tuple[int, float]) -> tuple[int, float]:
    """(requests, cost) of the matching records that have no user; with_user: those of
    the records that have one."""
    if flt.user_id is not None:
        return 0, 0.0
    if not _rollups_answer(reader, flt):
        where, params = compile_filter(organization, flt, reader.dialect.like_ci)
        rows = reader._fetchall(f"SELECT COUNT(*), {SUM_COLUMNS['cost_usd']} FROM requests r"
                                f" WHERE {where} AND r.user_id IS NULL", params)
        return int(rows[0][0] or 0), float(rows[0][1] or 0.0)
    # The window's total less what the user rollups hold (they count every record
    # with a user), as metrics?group_by=user_id finds its null group.
    total = window_total(reader, organization, flt)
    return total.requests - with_user[0], total.get("cost_usd") - with_user[1]
