"""The alert evaluator: run by the alerts job (job.py; deployment scope, so exactly one
across every worker and replica) every `[alerts] interval_s`, it compares each rule,
and each budget threshold, with the log.

A rule is evaluated per group (one state per user, model or property value with
group_by). A group whose value reaches the threshold while it was not firing fires:
its state, a history entry and one queued delivery per channel are written in one
transaction; when it falls back under, the same makes a resolve. Nothing is sent here:
delivery.py sends the queue, with retries, so a slow channel never
delays evaluation. A budget with alert_at [50, 80, 100] is three such rules on its
spend (metric cost over its period and scope).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from heliograph.alerts import repo
from heliograph.alerts.channels import alert_notice
from heliograph.alerts.model import Budget, Rule, request_filter
from heliograph.alerts.windows import span
from heliograph.records import utc_iso

log = logging.getLogger("heliograph.alerts")


@dataclass(frozen=True)
class Check:
    """One thing to compare: a rule, or one threshold of a budget."""
    source_id: str        # what alert_states is keyed by
    alert_id: str         # the rule's or budget's id, as history and the API show it
    organization: str
    name: str
    kind: str             # "alert" | "budget"
    metric: str
    threshold: float
    window: str
    filter: dict
    group_by: str | None
    min_requests: int
    channels: list[dict]
    extra: dict


def rule_checks(rule: Rule) -> list[Check]:
    return [Check(rule.id, rule.id, rule.organization, rule.name, "alert", rule.metric,
                  rule.threshold, rule.window, rule.filter, rule.group_by,
                  rule.min_requests, rule.channels, {})]


def budget_checks(budget: Budget) -> list[Check]:
    # The scope is a filter (user_id, property.<Name>) or a key (key_id, see evaluate).
    return [Check(f"{budget.id}@{pct:g}", budget.id, budget.organization, budget.name,
                  "budget", "cost", budget.limit_usd * pct / 100, budget.period,
                  dict(budget.scope), None, 0, budget.channels,
                  {"percent": pct, "limit_usd": budget.limit_usd})
            for pct in budget.alert_at]


def evaluate(store, check: Check, now: float, timezone: str, dashboard_url: str) -> int:
    """Compare one check with the log; record and queue its crossings. Returns how many
    groups changed state."""
    # The analytics side (~1.3 MB of modules) only once there is a rule or budget: the
    # host runs this every interval whether or not any exists.
    from heliograph.analytics.alert_values import window_totals

    window = span(check.window, now, timezone)
    key_id = check.filter.get("key_id")
    flt = request_filter({k: v for k, v in check.filter.items() if k != "key_id"})
    totals = window_totals(store, check.organization, flt, check.group_by,
                           utc_iso(window.start), utc_iso(min(now, window.end)),
                           with_p95=check.metric == "latency_p95", key_id=key_id)
    before = repo.states(store, check.source_id)
    changes = 0
    for group in set(totals) | set(before):
        t = totals.get(group)
        value = t.value(check.metric) if t is not None else None
        enough = t is not None and t.requests >= max(check.min_requests, 1)
        firing = enough and value is not None and value >= check.threshold
        if firing == before.get(group, False):
            continue
        if not firing and group not in before:
            continue
        event = _event(check, group, firing, value if value is not None else 0.0, now)
        event["view"] = _view(check, group, window.start)
        notices = [(ch, alert_notice(event, dashboard_url)) for ch in check.channels]
        if repo.record_change(store, check.organization, check.source_id, check.alert_id,
                              group, before.get(group), firing, value, check.threshold,
                              notices, now):
            changes += 1
    return changes


def _event(check: Check, group: str, firing: bool, value: float, now: float) -> dict:
    alert = {"id": check.alert_id, "kind": check.kind, "name": check.name,
             "metric": check.metric, "window": check.window, "filter": check.filter,
             "group_by": check.group_by, **check.extra}
    return {"type": f"{check.kind}.{'firing' if firing else 'resolved'}", "alert": alert,
            "state": "firing" if firing else "resolved", "value": value,
            "threshold": check.threshold, "group": group or None,
            "group_by": check.group_by, "at": utc_iso(now)}


def _view(check: Check, group: str, start: float) -> dict[str, str]:
    """The dashboard's requests view (query-API parameters) of the requests behind a
    value: the rule's filter, its group, since the window's start."""
    view = {k: str(v) for k, v in check.filter.items() if k != "key_id"}
    if check.group_by and group:
        view[check.group_by] = group
    view["since"] = utc_iso(start)
    return view


def evaluate_all(store, now: float, timezone: str = "UTC", dashboard_url: str = "") -> int:
    """Every rule and budget threshold of every organization; one failing check is
    logged and the others still run."""
    checks = [c for rule in repo.list_rules(store) for c in rule_checks(rule)]
    checks += [c for budget in repo.list_budgets(store) for c in budget_checks(budget)]
    changes = 0
    for check in checks:
        try:
            changes += evaluate(store, check, now, timezone, dashboard_url)
        except Exception:
            log.exception("evaluating alert %s failed", check.alert_id)
    return changes
