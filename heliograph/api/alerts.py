"""Alert rules over HTTP, for admin keys (PRODUCT.md "Alerts, budgets and webhooks"):
POST/GET /api/v1/alerts, GET /api/v1/alerts/history, GET/PATCH/DELETE
/api/v1/alerts/{alert_id}. Rules are evaluated by the background host
(heliograph/alerts/evaluator.py), never here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from heliograph.alerts import repo
from heliograph.alerts.model import check_rule, new_secrets, public_channels
from heliograph.api._admin import admin_json, found, json_body
from heliograph.api._common import path_param, positive_int, query_value
from heliograph.asgi import Request
from heliograph.routes import Route

MAX_HISTORY = 1000


def with_secrets(item: dict, channels: list[dict], old: list[dict] | None) -> dict:
    """The creation (or update) answer: each new webhook channel's signing secret, once."""
    fresh = {s["url"]: s["signing_secret"] for s in new_secrets(channels, old)}
    shown = []
    for ch in public_channels(channels):
        if ch["type"] == "webhook" and ch["url"] in fresh:
            ch = {**ch, "signing_secret": fresh[ch["url"]]}
        shown.append(ch)
    return {**item, "channels": shown}


async def _rule(gw: Any, request: Request, org: str):
    return await found("alert", repo.get_rule, gw, org, path_param(request, "alert_id"))


@admin_json("alerts")
async def create_alert(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    rule = check_rule(await json_body(request), principal.organization)
    await asyncio.to_thread(repo.save_rule, gw.store, rule)
    return 201, with_secrets(rule.public(), rule.channels, None)


@admin_json("alerts")
async def list_alerts(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    rules = await asyncio.to_thread(repo.list_rules, gw.store, principal.organization)
    return 200, {"data": [rule.public() for rule in rules]}


@admin_json("alerts", params=("alert_id", "limit"))
async def alert_history(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    limit = min(positive_int(request.query, "limit", 100), MAX_HISTORY)
    entries = await asyncio.to_thread(repo.list_history, gw.store, principal.organization,
                                      query_value(request.query, "alert_id"), limit)
    return 200, {"data": entries}


@admin_json("alerts")
async def get_alert(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    rule = await _rule(gw, request, principal.organization)
    states = await asyncio.to_thread(repo.states, gw.store, rule.id)
    deliveries = await asyncio.to_thread(repo.list_deliveries, gw.store,
                                         principal.organization, rule.id, 50)
    return 200, {**rule.public(),
                 "firing": sorted(group or None for group, on in states.items() if on),
                 "deliveries": deliveries}


@admin_json("alerts")
async def update_alert(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    old = await _rule(gw, request, principal.organization)
    rule = check_rule(await json_body(request), principal.organization, old)
    await asyncio.to_thread(repo.save_rule, gw.store, rule)
    return 200, with_secrets(rule.public(), rule.channels, old.channels)


@admin_json("alerts")
async def delete_alert(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    rule_id = path_param(request, "alert_id")
    await found("alert", repo.delete_rule, gw, principal.organization, rule_id)
    return 200, {"id": rule_id, "deleted": True}


ROUTES = [
    Route("POST", "/api/v1/alerts", create_alert),
    Route("GET", "/api/v1/alerts", list_alerts),
    Route("GET", "/api/v1/alerts/history", alert_history),  # before /{alert_id}
    Route("GET", "/api/v1/alerts/{alert_id}", get_alert),
    Route("PATCH", "/api/v1/alerts/{alert_id}", update_alert),
    Route("DELETE", "/api/v1/alerts/{alert_id}", delete_alert),
]
