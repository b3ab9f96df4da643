"""The alert tables (migration 7) as functions over a Store: rules, budgets, per-request
webhooks, rule states and history, and the delivery queue. Synchronous, like the Store:
the API calls them through asyncio.to_thread, the background jobs on their own thread,
and a dashboard page may call list_rules / list_history / list_budgets directly.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from heliograph.alerts.model import Budget, RequestWebhook, Rule
from heliograph.records import utc_iso
from heliograph.store._schema import dumps, loads

_RULE_COLUMNS = ("id, organization, name, metric, threshold, time_window, filter_json,"
                 " group_by, min_requests, channels_json, created_at, updated_at")
_BUDGET_COLUMNS = ("id, organization, name, scope_json, limit_usd, period, enforce,"
                   " alert_at_json, channels_json, created_at, updated_at")
_WEBHOOK_COLUMNS = ("id, organization, url, secret, sample_rate, filter_json,"
                    " include_bodies, created_at")


def _rule(row) -> Rule:
    (id_, org, name, metric, threshold, window, flt, group_by, min_requests, channels,
     created, updated) = row
    return Rule(id_, org, name, metric, float(threshold), window, loads(flt), group_by,
                int(min_requests), loads(channels), created, updated)


def _budget(row) -> Budget:
    (id_, org, name, scope, limit, period, enforce, alert_at, channels, created,
     updated) = row
    return Budget(id_, org, name, loads(scope), float(limit), period, bool(enforce),
                  loads(alert_at), loads(channels), created, updated)


def _webhook(row) -> RequestWebhook:
    id_, org, url, secret, rate, flt, bodies, created = row
    return RequestWebhook(id_, org, url, secret, float(rate), loads(flt), bool(bodies),
                          created)


def _select(store, sql: str, params: tuple = ()) -> list[tuple]:
    with store.transaction() as cur:
        return store.execute(cur, sql, params).fetchall()


def _rows(store, table: str, columns: str, organization: str | None,
          item_id: str | None = None) -> list[tuple]:
    """A table's rows for one organization (every one when None), oldest first; or the
    one row with `item_id`."""
    sql, params = f"SELECT {columns} FROM {table}", []
    if organization is not None:
        sql, params = sql + " WHERE organization = ?", [organization]
    if item_id is not None:
        sql, params = sql + " AND id = ?", [*params, item_id]
    return _select(store, sql + " ORDER BY created_at, id", tuple(params))


def _replace(store, table: str, columns: str, values: tuple) -> None:
    """Insert a row, or replace the row with the same id (values[0])."""
    with store.transaction(write=True) as cur:
        store.execute(cur, f"DELETE FROM {table} WHERE id = ?", (values[0],))
        store.execute(cur, f"INSERT INTO {table} ({columns}) VALUES"
                           f" ({', '.join('?' * len(values))})", values)


# -- rules ------------------------------------------------------------------------------
def save_rule(store, rule: Rule) -> Rule:
    """Insert a new rule or replace an existing one (same id). Its states are kept: a
    group firing under the old threshold resolves if it is under the new one."""
    now = utc_iso(time.time())
    rule.created_at = rule.created_at or now
    rule.updated_at = now
    _replace(store, "alert_rules", _RULE_COLUMNS,
             (rule.id, rule.organization, rule.name, rule.metric, rule.threshold,
              rule.window, dumps(rule.filter), rule.group_by, rule.min_requests,
              dumps(rule.channels), rule.created_at, rule.updated_at))
    return rule


def get_rule(store, organization: str, rule_id: str) -> Rule | None:
    rows = _rows(store, "alert_rules", _RULE_COLUMNS, organization, rule_id)
    return _rule(rows[0]) if rows else None


def list_rules(store, organization: str | None = None) -> list[Rule]:
    """An organization's rules, oldest first; every organization's when None."""
    return [_rule(row) for row in _rows(store, "alert_rules", _RULE_COLUMNS, organization)]


def _delete(store, table: str, organization: str, item_id: str) -> bool:
    with store.transaction(write=True) as cur:
        store.execute(cur, f"DELETE FROM {table} WHERE organization = ? AND id = ?",
                      (organization, item_id))
        deleted = cur.rowcount > 0
        if deleted:
            # A budget's states are per threshold: "<budget id>@<percent>".
            store.execute(cur, "DELETE FROM alert_states WHERE source_id = ?"
                               " OR source_id LIKE ?", (item_id, item_id + "@%"))
    return deleted


def delete_rule(store, organization: str, rule_id: str) -> bool:
    return _delete(store, "alert_rules", organization, rule_id)


# -- budgets ----------------------------------------------------------------------------
def save_budget(store, budget: Budget) -> Budget:
    now = utc_iso(time.time())
    budget.created_at = budget.created_at or now
    budget.updated_at = now
    _replace(store, "budgets", _BUDGET_COLUMNS,
             (budget.id, budget.organization, budget.name, dumps(budget.scope),
              budget.limit_usd, budget.period, budget.enforce, dumps(budget.alert_at),
              dumps(budget.channels), budget.created_at, budget.updated_at))
    return budget


def get_budget(store, organization: str, budget_id: str) -> Budget | None:
    rows = _rows(store, "budgets", _BUDGET_COLUMNS, organization, budget_id)
    return _budget(rows[0]) if rows else None


def list_budgets(store, organization: str | None = None) -> list[Budget]:
    return [_budget(row) for row in _rows(store, "budgets", _BUDGET_COLUMNS, organization)]


def delete_budget(store, organization: str, budget_id: str) -> bool:
    return _delete(store, "budgets", organization, budget_id)


# -- per-request webhooks ---------------------------------------------------------------
def save_webhook(store, hook: RequestWebhook) -> RequestWebhook:
    hook.created_at = hook.created_at or utc_iso(time.time())
    with store.transaction(write=True) as cur:
        store.execute(cur, f"INSERT INTO request_webhooks ({_WEBHOOK_COLUMNS}) VALUES"
                           " (?, ?, ?, ?, ?, ?, ?, ?)",
                      (hook.id, hook.organization, hook.url, hook.secret, hook.sample_rate,
                       dumps(hook.filter), hook.include_bodies, hook.created_at))
    return hook


def list_webhooks(store, organization: str | None = None) -> list[RequestWebhook]:
    return [_webhook(row) for row in _rows(store, "request_webhooks", _WEBHOOK_COLUMNS, organization)]


def get_webhook(store, organization: str, hook_id: str) -> RequestWebhook | None:
    rows = _rows(store, "request_webhooks", _WEBHOOK_COLUMNS, organization, hook_id)
    return _webhook(rows[0]) if rows else None


def delete_webhook(store, organization: str, hook_id: str) -> bool:
    return _delete(store, "request_webhooks", organization, hook_id)


# -- states, history ----------------------------------------------------------------------
def states(store, source_id: str) -> dict[str, bool]:
    """group key → firing, for one rule (or budget threshold)."""
    rows = _select(store, "SELECT group_key, firing FROM alert_states WHERE source_id = ?",
                   (source_id,))
    return {key: bool(firing) for key, firing in rows}


def record_change(store, organization: str, source_id: str, alert_id: str, group_key: str,
                  was: bool | None, firing: bool, value: float | None, threshold: float,
                  notices: list[tuple[dict, dict]], now: float) -> bool:
    """One crossing, all or nothing: the new state, its history entry and one queued
    delivery per channel (channel, payload). `was`: the state read before (None: no row).
    The state changes only if it still is `was` (compare-and-set), so even two
    evaluators overlapping during a lock handover record and notify a crossing once.
    False when another evaluator got there first."""
    at = utc_iso(now)
    with store.transaction(write=True) as cur:
        if was is None:
            store.execute(cur, "INSERT INTO alert_states (source_id, group_key, firing,"
                               " value, changed_at) VALUES (?, ?, ?, ?, ?)"
                               " ON CONFLICT (source_id, group_key) DO NOTHING",
                          (source_id, group_key, firing, value, at))
        else:
            store.execute(cur, "UPDATE alert_states SET firing = ?, value = ?,"
                               " changed_at = ? WHERE source_id = ? AND group_key = ?"
                               " AND firing = ?",
                          (firing, value, at, source_id, group_key, was))
        if cur.rowcount != 1:
            return False
        store.execute(cur, "INSERT INTO alert_history (id, organization, alert_id, state,"
                           " value, threshold, group_key, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (str(uuid.uuid4()), organization, alert_id,
                       "firing" if firing else "resolved", value, threshold,
                       group_key or None, at))
        enqueue(store, cur, organization, alert_id, notices, now)
    return True


def list_history(store, organization: str, alert_id: str | None = None,
                 limit: int = 100) -> list[dict]:
    """Newest first."""
    sql = ("SELECT alert_id, state, value, threshold, group_key, at FROM alert_history"
           " WHERE organization = ?")
    params: tuple = (organization,)
    if alert_id is not None:
        sql += " AND alert_id = ?"
        params += (alert_id,)
    rows = _select(store, sql + " ORDER BY at DESC, id DESC LIMIT ?", (*params, limit))
    return [{"alert_id": a, "state": s, "value": v, "threshold": t, "group": g, "at": at}
            for a, s, v, t, g, at in rows]


# -- the delivery queue -------------------------------------------------------------------
def enqueue(store, cur, organization: str, source_id: str,
            notices: list[tuple[dict, Any]], now: float) -> None:
    """Queue (channel, payload) pairs inside the caller's transaction."""
    if not notices:
        return
    created = utc_iso(now)
    store.executemany(cur, "INSERT INTO deliveries (id, organization, source_id,"
                           " channel_json, payload_json, status, attempts, next_at,"
                           " created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                      [(str(uuid.uuid4()), organization, source_id, dumps(channel),
                        dumps(payload), now, created) for channel, payload in notices])


def due_deliveries(store, now: float, limit: int = 100) -> list[dict]:
    rows = _select(store, "SELECT id, organization, source_id, channel_json, payload_json,"
                          " attempts FROM deliveries WHERE status = 'pending'"
                          " AND next_at <= ? ORDER BY next_at LIMIT ?", (now, limit))
    return [{"id": i, "organization": o, "source_id": s, "channel": loads(c),
             "payload": loads(p), "attempts": a} for i, o, s, c, p, a in rows]


def claim(store, item: dict, now: float, lease_s: float) -> dict | None:
    """Take a due delivery for one attempt: its attempt count goes up and it is not due
    again until `lease_s` from now (in case this sender dies mid-send), but only if no
    other sender took it first (compare-and-set on the attempt count)."""
    with store.transaction(write=True) as cur:
        store.execute(cur, "UPDATE deliveries SET attempts = ?, next_at = ?"
                           " WHERE id = ? AND status = 'pending' AND attempts = ?",
                      (item["attempts"] + 1, now + lease_s, item["id"], item["attempts"]))
        if cur.rowcount != 1:
            return None
    return {**item, "attempts": item["attempts"] + 1}


def finish_delivery(store, delivery_id: str, ok: bool, error: str | None,
                    attempts: int, next_at: float | None, now: float) -> None:
    """After one (claimed) attempt: delivered, retried at next_at, or failed (next_at
    None)."""
    status = "delivered" if ok else ("pending" if next_at is not None else "failed")
    with store.transaction(write=True) as cur:
        store.execute(cur, "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?,"
                           " last_error = ?, delivered_at = ? WHERE id = ?",
                      (status, attempts, next_at if next_at is not None else now,
                       error, utc_iso(now) if ok else None, delivery_id))


def list_deliveries(store, organization: str, source_id: str, limit: int = 100
                    ) -> list[dict]:
    """A rule's, budget's or webhook's deliveries, newest first (secrets left out)."""
    rows = _select(store, "SELECT id, channel_json, status, attempts, last_error,"
                          " created_at, delivered_at FROM deliveries"
                          " WHERE organization = ? AND source_id = ?"
                          " ORDER BY created_at DESC, id DESC LIMIT ?",
                   (organization, source_id, limit))
    out = []
    for id_, channel, status, attempts, error, created, delivered in rows:
        ch = {k: v for k, v in loads(channel).items() if k != "secret"}
        out.append({"id": id_, "channel": ch, "status": status, "attempts": attempts,
                    "last_error": error, "created_at": created, "delivered_at": delivered})
    return out
