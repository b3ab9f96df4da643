"""The numbers an alert rule or a budget compares with its threshold: one SQL aggregate
over the log per rule (and one more for a latency percentile), grouped in the database,
so evaluation costs the same whatever the number of rows.

Runs on a Store's connection (the evaluator lives in the background host, not in a
worker, so it has no Analytics pool); SQL written with "?" placeholders like the rest of
the read side.
"""

from __future__ import annotations

from dataclasses import dataclass

from heliograph.analytics._where import compile_filter
from heliograph.analytics.filters import PROPERTY_PREFIX, RequestFilter

# Columns a rule may group by; property.<name> joins the property index instead.
GROUP_COLUMNS = {"user_id": "r.user_id", "model": "r.model", "provider": "r.provider"}

_SUMS = ("COUNT(*), "
         "COALESCE(SUM(CASE WHEN r.status >= 400 THEN 1 ELSE 0 END), 0), "
         "COALESCE(SUM(CASE WHEN r.cost_known THEN r.cost_usd ELSE 0 END), 0), "
         "COALESCE(SUM(r.total_tokens), 0)")


STATEMENT_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Totals:
    requests: int
    errors: int
    cost_usd: float
    tokens: int
    p95_latency_ms: float | None = None

    def value(self, metric: str) -> float | None:
        if metric == "requests":
            return float(self.requests)
        if metric == "errors":
            return float(self.errors)
        if metric == "error_rate":
            return self.errors / self.requests if self.requests else None
        if metric == "cost":
            return self.cost_usd
        if metric == "tokens":
            return float(self.tokens)
        if metric == "latency_p95":
            return self.p95_latency_ms
        raise ValueError(f"unknown metric {metric!r}")


def _source(store, organization: str, flt: RequestFilter, group_by: str | None,
            start_iso: str, end_iso: str, key_id: str | None) -> tuple[str, str, list]:
    """(group expression, FROM ... WHERE ..., params)."""
    where, params = compile_filter(organization, flt, store.dialect.like_ci)
    if key_id is not None:  # a key's budget: not a query-API filter
        where += " AND r.key_id = ?"
        params.append(key_id)
    where += " AND r.created_at >= ? AND r.created_at < ?"
    params += [start_iso, end_iso]
    if group_by is None:
        return "''", f"FROM requests r WHERE {where}", params
    if group_by.startswith(PROPERTY_PREFIX):
        join = ("JOIN request_properties g ON g.organization = r.organization"
                " AND g.request_id = r.id AND g.name = ?")
        return "g.value", f"FROM requests r {join} WHERE {where}", \
            [group_by[len(PROPERTY_PREFIX):].lower(), *params]
    column = GROUP_COLUMNS[group_by]
    return column, f"FROM requests r WHERE {where} AND {column} IS NOT NULL", params


def window_totals(store, organization: str, flt: RequestFilter, group_by: str | None,
                  start_iso: str, end_iso: str, with_p95: bool = False,
                  key_id: str | None = None) -> dict[str, Totals]:
    """group value ('' without group_by) → totals of the requests in [start, end)."""
    group, source, params = _source(store, organization, flt, group_by, start_iso, end_iso,
                                    key_id)
    # PostgreSQL refuses a constant in GROUP BY / PARTITION BY: ungrouped is one total.
    grouping = f" GROUP BY {group}" if group_by else ""
    partition = f"PARTITION BY {group} " if group_by else ""
    with store.transaction() as cur:
        if store.dialect.name == "postgres":
            # The evaluator must finish well within its deployment lock's expiry.
            store.execute(cur, f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        rows = store.execute(cur, f"SELECT {group}, {_SUMS} {source}{grouping}",
                             params).fetchall()
        p95: dict[str, float] = {}
        if with_p95 and rows:
            # Nearest rank, as the query API computes it: the ceil(0.95 n)-th smallest;
            # (95 n + 99) / 100 is that ceiling in integer arithmetic on both databases.
            ranked = store.execute(cur, f"""
                SELECT grp, latency_ms FROM (
                    SELECT {group} AS grp, r.latency_ms AS latency_ms,
                           ROW_NUMBER() OVER ({partition}ORDER BY r.latency_ms)
                               AS rn,
                           COUNT(*) OVER ({partition.strip()}) AS n
                    {source} AND r.latency_ms IS NOT NULL) t
                WHERE rn = (95 * n + 99) / 100""", params).fetchall()
            p95 = {str(g): float(v) for g, v in ranked}
    out = {}
    for key, requests, errors, cost, tokens in rows:
        key = "" if key is None else str(key)
        out[key] = Totals(int(requests), int(errors), float(cost), int(tokens),
                          p95.get(key))
    return out
