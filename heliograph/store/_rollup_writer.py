"""Keeping the rollups (see _rollups.py) in step with the log: the writer's batch is
summed in Python into one delta row per rollup key, and each row is upserted (added to
the stored counters) in the insert's transaction.

Summing here rather than by INSERT … SELECT over the rows just stored: the SQL form cost
~1.4 s per 2,000 demo records on SQLite (a 43-bin histogram pivot per table), this one
a few tens of ms. Every counter mirrors the SQL expression of the same name in
_rollups.SUM_COLUMNS; the tests compare the two paths on both stores.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from operator import itemgetter

from heliograph.store._rollups import (
    HISTOGRAM_COLUMNS,
    LATENCY_BOUNDS,
    SUM_COLUMNS,
    TABLES,
    RollupTable,
    merge_sql,
)
from heliograph.store._schema import property_rows, values_reader

N_BINS = len(HISTOGRAM_COLUMNS)


# The keys _counters reads, in one call (_schema.values_reader).
_COUNTER_KEYS = ("status", "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens",
                 "latency_ms", "cost_known", "cache", "cost_saved_usd", "cached_tokens",
                 "cache_write_tokens", "reasoning_tokens")
_counter_values = values_reader(_COUNTER_KEYS)


def _counters(rec: dict) -> tuple[list, float | None, int | None]:
    """(the _rollups.SUM_COLUMNS values of one record, its latency, its histogram bin)."""
    (status, cost, prompt, completion, total, latency, known, cache, saved, cached,
     cache_write, reasoning) = _counter_values(rec)
    prompt = prompt or 0
    completion = completion or 0
    known = bool(known)
    sums = [1,
            1 if status is not None and status >= 400 else 0,
            1 if cache == "hit" else 0,
            cost if known and cost is not None else 0.0,
            0 if known else 1,
            saved or 0.0,
            prompt, completion,
            total if total is not None else prompt + completion,
            cached or 0,
            cache_write or 0,
            reasoning or 0,
            latency or 0.0,
            0 if latency is None else 1]
    return sums, latency, None if latency is None else bisect_right(LATENCY_BOUNDS, latency)


# The keys _groups reads, as _COUNTER_KEYS.
_GROUP_KEYS = ("organization", "created_at", "model", "provider", "status", "cache", "key_id",
               "user_id", "session_id")
_group_values = values_reader(_GROUP_KEYS)


def _groups(records: list[dict], props: list[list[tuple]]) -> dict[str, dict[tuple, list[int]]]:
    """{table: {key: indexes of its records}} for the tables summed from records, in one
    pass over the batch (one key per table and record, in its key column order; a table
    where a record has no key does not count it)."""
    hourly: dict[tuple, list[int]] = {}
    by_property: dict[tuple, list[int]] = {}
    user_hours: dict[tuple, list[int]] = {}
    user_model_hours: dict[tuple, list[int]] = {}
    sessions: dict[tuple, list[int]] = {}
    for i, rec in enumerate(records):
        (organization, at, model, provider, status, cache, key_id, user,
         session) = _group_values(rec)
        organization = organization or ""
        hour = at[:13]
        model = model or ""
        hourly.setdefault((organization, hour, model, provider or "", status or 0,
                           cache or "", key_id or ""), []).append(i)
        for _id, prop_org, name, value in props[i]:
            by_property.setdefault((prop_org, name, value, hour), []).append(i)
        if user is not None:
            user_hours.setdefault((organization, hour, user), []).append(i)
            user_model_hours.setdefault((organization, user, hour, model), []).append(i)
        if session is not None:
            sessions.setdefault((organization, session), []).append(i)
    return {"rollup_hourly": hourly, "rollup_property_hourly": by_property,
            "rollup_user_hourly": user_hours, "rollup_sessions": sessions,
            "rollup_user_model_hourly": user_model_hours}


def _alone(counters: tuple[list, float | None, int | None]) -> list:
    sums, latency, _bin = counters
    return [*sums, latency, latency]


def _alone_hist(counters: tuple[list, float | None, int | None]) -> list:
    hist = [0] * N_BINS
    if (bin_ := counters[2]) is not None:
        hist[bin_] = 1
    return _alone(counters) + hist


def deltas(records: list[dict], props: list[list[tuple]] | None = None
           ) -> dict[str, dict[tuple, list]]:
    """{table: {key: row values after the key}} summing the records (`props`: each
    record's property_rows, when the caller has them). Records are grouped by key first;
    a group of one (most groups of a batch spread over days, and most sessions and users
    of a live one) takes its record's values as they are, a larger one sums its members'
    14 counters with zip/sum (in C) and counts its histogram bins, instead of adding
    57-wide rows."""
    if props is None:
        props = [property_rows(rec) for rec in records]
    counters = [_counters(rec) for rec in records]
    # A record's own row, without and with its histogram, made once (when first needed)
    # for every table where it is a group of its own.
    alone: dict[int, list] = {}
    alone_hist: dict[int, list] = {}
    # Each extra column's values (one per record), computed once for the tables that keep
    # it (first_at and last_at are the same column).
    extra_values: dict[Callable, list] = {}
    out: dict[str, dict[tuple, list]] = {}
    for name, groups in _groups(records, props).items():
        table = _BY_NAME[name]
        histogram = table.histogram
        singles = alone_hist if histogram else alone
        make_single = _alone_hist if histogram else _alone
        extras = []
        for extra, _type, _agg, how in table.extras:
            of = _EXTRA[extra]
            if of not in extra_values:
                extra_values[of] = of(records)
            extras.append((extra_values[of], min if how == "min" else max))
        rows = out[name] = {}
        for key, members in groups.items():
            if len(members) == 1:
                (i,) = members
                if (single := singles.get(i)) is None:
                    single = singles[i] = make_single(counters[i])
                if not extras:
                    rows[key] = single   # shared, never changed: rows are read only
                    continue
                rows[key] = single + [per_record[i] for per_record, _pick in extras]
                continue
            group = [counters[i] for i in members]
            row: list = list(map(sum, zip(*[c[0] for c in group])))
            seen = [x for c in group if (x := c[1]) is not None]
            row += (min(seen, default=None), max(seen, default=None))
            if histogram:
                hist = [0] * N_BINS
                for c in group:
                    if (bin_ := c[2]) is not None:
                        hist[bin_] += 1
                row += hist
            for per_record, pick in extras:
                values = [v for i in members if (v := per_record[i]) is not None]
                row.append(pick(values, default=None))
            rows[key] = row
    for name, (source, coarser) in _DERIVED.items():
        out[name] = _derive(_BY_NAME[name], _BY_NAME[source], out[source], coarser)
    # Narrow tables keep a few of the counters: summed like the others, then cut down.
    for name, keep in _NARROW.items():
        out[name] = {key: [row[i] for i in keep] for key, row in out[name].items()}
    return out


_EXTREMES_AT = len(SUM_COLUMNS)   # latency_min and latency_max follow the sums


def _derive(table: RollupTable, source: RollupTable, rows: dict[tuple, list],
            coarser: Callable[[tuple], tuple]) -> dict[tuple, list]:
    """A coarser table's rows summed from a finer table's (days from hours, all time from
    days): a pass over the finer groups, not over every record again."""
    groups: dict[tuple, list[list]] = {}
    for key, row in rows.items():
        groups.setdefault(coarser(key), []).append(row)
    hist_at = _EXTREMES_AT + 2
    extras_at = hist_at + (N_BINS if source.histogram else 0)
    source_extras = [name for name, *_ in source.extras]
    extra_at = [(extras_at + source_extras.index(name), min if how == "min" else max)
                for name, _type, _agg, how in table.extras]
    # A group of one finer row is that row, less what this table does not keep.
    same_layout = (table.histogram == source.histogram
                   and [e for e, *_ in table.extras] == source_extras)
    out = {}
    for key, members in groups.items():
        if len(members) == 1:
            (only,) = members
            if same_layout:
                out[key] = only
                continue
            row = only[:hist_at]
            if table.histogram:
                row += only[hist_at:hist_at + N_BINS]
            row += [only[at] for at, _pick in extra_at]
            out[key] = row
            continue
        lows = [x for m in members if (x := m[_EXTREMES_AT]) is not None]
        highs = [x for m in members if (x := m[_EXTREMES_AT + 1]) is not None]
        row = [sum(column) for column in zip(*(m[:_EXTREMES_AT] for m in members))]
        row += [min(lows, default=None), max(highs, default=None)]
        if table.histogram:
            row += [sum(column) for column in
                    zip(*(m[hist_at:hist_at + N_BINS] for m in members))]
        for at, pick in extra_at:
            values = [x for m in members if (x := m[at]) is not None]
            row.append(pick(values, default=None))
        out[key] = row
    return out


# Tables summed from a finer one's groups: (the finer table, its key → this key).
_DERIVED: dict[str, tuple[str, Callable[[tuple], tuple]]] = {
    "rollup_daily": ("rollup_hourly", lambda k: (k[0], k[1][:10], *k[2:])),
    "rollup_hourly_totals": ("rollup_hourly", lambda k: (k[0], k[1])),
    "rollup_daily_totals": ("rollup_hourly", lambda k: (k[0], k[1][:10])),
    "rollup_property_daily": ("rollup_property_hourly",
                              lambda k: (k[0], k[1], k[2], k[3][:10])),
    # In this order: users are summed from days, days from hours.
    "rollup_user_daily": ("rollup_user_hourly", lambda k: (k[0], k[1][:10], k[2])),
    "rollup_users": ("rollup_user_daily", lambda k: (k[0], k[2])),
    "rollup_user_model_daily": ("rollup_user_model_hourly",
                                lambda k: (k[0], k[1], k[2][:10], k[3])),
    # All time per user and model: the same groups as the hour's in a live batch (each
    # passed through as it is), instead of grouping the records once more.
    "rollup_user_models": ("rollup_user_model_hourly", lambda k: (k[0], k[1], k[3])),
    "rollup_user_dekad": ("rollup_user_daily", lambda k: (k[0], _dekad(k[1]), k[2])),
}


def _dekad(day: str) -> str:
    """'YYYY-MM-DD' → its dekad, as _rollups._DEKAD labels it: 'YYYY-MM-1' to '-3'."""
    of_month = day[8:10]
    return day[:8] + ("1" if of_month <= "10" else "2" if of_month <= "20" else "3")


def _created_at(records: list[dict]) -> list[str]:
    return list(map(_CREATED_AT, records))


def _name_keys(records: list[dict]) -> list[str | None]:
    return [None if (name := rec.get("session_name")) is None else rec["created_at"] + name
            for rec in records]


_CREATED_AT = itemgetter("created_at")
# Each extra column's values for a batch (a column at once: no function call a record).
_EXTRA: dict[str, Callable[[list[dict]], list]] = {
    "first_at": _created_at, "last_at": _created_at, "name_key": _name_keys,
}


def maintain(store, cur, records: list[dict], props: list[list[tuple]] | None = None
             ) -> None:
    """Add the newly stored `records` to every rollup, in the caller's transaction
    (`props`: each record's property_rows, when the caller has them). Rows go in key
    order where transactions can write at once (store.rollups_in_key_order), so
    concurrent writers lock them in the same order (no deadlock)."""
    updates = _UPDATES[store.dialect.name]
    ordered = store.rollups_in_key_order
    store._merge_rollups(cur, [
        (_BY_NAME[name], [(*key, *values) for key, values in
                          (sorted(rows.items()) if ordered else rows.items())],
         updates[name])
        for name, rows in deltas(records, props).items() if rows])


def _updates(table: RollupTable, dialect: str) -> str:
    """The ON CONFLICT … DO UPDATE SET list: counters add, extremes keep the min/max."""
    return ", ".join(merge_sql(table, c, dialect) for c in table.columns()
                     if c not in table.keys)


_BY_NAME = {t.name: t for t in TABLES}
# Tables with only some counters: where each kept one is in a full row.
_NARROW = {t.name: [list(SUM_COLUMNS).index(c) for c in t.counters]
           for t in TABLES if t.counters is not None}
_UPDATES = {dialect: {t.name: _updates(t, dialect) for t in TABLES}
            for dialect in ("sqlite", "postgres")}
