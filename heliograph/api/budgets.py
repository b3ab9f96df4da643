"""Budgets over HTTP, for admin keys: POST/GET /api/v1/budgets, GET/PATCH/DELETE
/api/v1/budgets/{budget_id}, each answered with its current `spend_usd` (the shared
counter enforcement reads) and `resets_at`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from heliograph.alerts import repo
from heliograph.alerts.model import Budget, check_budget, request_filter
from heliograph.alerts.windows import ROLLING_S, span
from heliograph.analytics.alert_values import window_totals
from heliograph.api._admin import admin_json, found, json_body
from heliograph.api._common import path_param
from heliograph.api.alerts import with_secrets
from heliograph.asgi import Request
from heliograph.records import utc_iso
from heliograph.routes import Route


async def _with_spend(gw: Any, budget: Budget, item: dict) -> dict:
    spend, resets = await gw.budgets.spend(budget)
    return {**item, "spend_usd": spend, "resets_at": utc_iso(resets) if resets else None,
            "exceeded": spend is not None and spend >= budget.limit_usd}


def _logged_spend(store, budget: Budget, timezone: str) -> float:
    """What the log already holds for the budget's current calendar period."""
    now = time.time()
    period = span(budget.period, now, timezone)
    scope = dict(budget.scope)
    key_id = scope.pop("key_id", None)
    totals = window_totals(store, budget.organization, request_filter(scope), None,
                           utc_iso(period.start), utc_iso(now + 1), key_id=key_id)
    return sum(t.cost_usd for t in totals.values())


async def _budget(gw: Any, request: Request, org: str) -> Budget:
    return await found("budget", repo.get_budget, gw, org, path_param(request, "budget_id"))


@admin_json("budgets")
async def create_budget(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    budget = check_budget(await json_body(request), principal.organization)
    if budget.period not in ROLLING_S:
        # A budget made mid-period starts from what was already spent in it.
        spent = await asyncio.to_thread(_logged_spend, gw.store, budget,
                                        gw.budgets.timezone)
        await gw.budgets.seed(budget, spent)
    await asyncio.to_thread(repo.save_budget, gw.store, budget)
    await gw.budgets.reload()  # this worker enforces it at once; the others within 2 s
    item = with_secrets(budget.public(), budget.channels, None)
    return 201, await _with_spend(gw, budget, item)


@admin_json("budgets")
async def list_budgets(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    budgets = await asyncio.to_thread(repo.list_budgets, gw.store, principal.organization)
    return 200, {"data": [await _with_spend(gw, b, b.public()) for b in budgets]}


@admin_json("budgets")
async def get_budget(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    budget = await _budget(gw, request, principal.organization)
    return 200, await _with_spend(gw, budget, budget.public())


@admin_json("budgets")
async def update_budget(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    old = await _budget(gw, request, principal.organization)
    budget = check_budget(await json_body(request), principal.organization, old)
    await asyncio.to_thread(repo.save_budget, gw.store, budget)
    await gw.budgets.reload()
    item = with_secrets(budget.public(), budget.channels, old.channels)
    return 200, await _with_spend(gw, budget, item)


@admin_json("budgets")
async def delete_budget(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    budget_id = path_param(request, "budget_id")
    await found("budget", repo.delete_budget, gw, principal.organization, budget_id)
    await gw.budgets.reload()
    return 200, {"id": budget_id, "deleted": True}


ROUTES = [
    Route("POST", "/api/v1/budgets", create_budget),
    Route("GET", "/api/v1/budgets", list_budgets),
    Route("GET", "/api/v1/budgets/{budget_id}", get_budget),
    Route("PATCH", "/api/v1/budgets/{budget_id}", update_budget),
    Route("DELETE", "/api/v1/budgets/{budget_id}", delete_budget),
]
