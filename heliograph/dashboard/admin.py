"""Settings pages: keys (admin keys only: create — the secret shown once — list by
prefix, revoke), alerts (rules and their history) and budgets (with their current spend),
read from the alerts package (heliograph/alerts/) as its API reads them. Channel
addresses are never shown (a Slack webhook URL is a credential): only their types."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from heliograph.alerts import repo
from heliograph.api.keys import MAX_EXPIRY_DAYS, MAX_NAME_CHARS, key_json
from heliograph.dashboard.app import Context, Page, Redirect, page
from heliograph.errors import BadRequest, NotFound
from heliograph.keys import display_prefix, generate_key, hash_key
from heliograph.records import utc_iso


async def _keys_page(ctx: Context, created: dict | None = None, error: str | None = None,
                     status: int = 200) -> Page:
    rows = await asyncio.to_thread(ctx.gw.store.list_keys, ctx.org)
    return Page("keys.html", {"nav": "keys", "keys": [key_json(row) for row in rows],
                              "created": created, "error": error}, status)


@page(admin=True)
async def keys(ctx: Context) -> Page:
    return await _keys_page(ctx)


@page(admin=True, method="POST")
async def create_key(ctx: Context) -> Page:
    name = ctx.form.get("name", "").strip()
    days_text = ctx.form.get("expires_in_days", "").strip()
    if not name or len(name) > MAX_NAME_CHARS:
        return await _keys_page(ctx, error=f"Give the key a name of 1 to {MAX_NAME_CHARS} "
                                           "characters.", status=400)
    expires_at = None
    if days_text:
        if not days_text.isdigit() or not 0 < int(days_text) <= MAX_EXPIRY_DAYS:
            return await _keys_page(ctx, error="Expiry must be a whole number of days "
                                               f"from 1 to {MAX_EXPIRY_DAYS}.", status=400)
        expires_at = utc_iso(time.time() + int(days_text) * 86400)
    secret = generate_key()
    row = await asyncio.to_thread(ctx.gw.store.create_key, hash_key(secret),
                                  display_prefix(secret), name, ctx.org,
                                  ctx.form.get("admin") == "on", expires_at, None)
    # The one time the secret is shown: in this answer (never stored, never in a URL).
    return await _keys_page(ctx, created={**key_json(row), "key": secret}, status=201)


@page(admin=True, method="POST")
async def revoke_key(ctx: Context) -> Redirect:
    key_id = ctx.request.scope["path_params"]["key_id"]
    row = await asyncio.to_thread(ctx.gw.store.get_key, key_id, ctx.org)
    if row is None:
        raise NotFound(f"no key {key_id!r} in this organization")
    if row.id == ctx.key.id:
        raise BadRequest("you are signed in with this key: sign in with another admin key "
                         "to revoke it")
    await asyncio.to_thread(ctx.gw.store.revoke_key, key_id, ctx.org)
    return Redirect(ctx.url("/keys"))


HISTORY_SHOWN = 50


def _alerts(store: Any, organization: str) -> tuple[list[dict], list[dict]]:
    rules = [rule.public() for rule in repo.list_rules(store, organization)]
    return rules, repo.list_history(store, organization, None, HISTORY_SHOWN)


@page()
async def alerts(ctx: Context) -> Page:
    rules, history = await asyncio.to_thread(_alerts, ctx.gw.store, ctx.org)
    names = {rule["id"]: rule["name"] for rule in rules}
    return Page("alerts.html", {"nav": "alerts", "rules": rules, "history": history,
                                "names": names})


@page()
async def budgets(ctx: Context) -> Page:
    found = await asyncio.to_thread(repo.list_budgets, ctx.gw.store, ctx.org)
    rows = []
    for budget in found:
        # The spend the enforcement counts (shared state), as GET /api/v1/budgets shows it.
        spend, resets = await ctx.gw.budgets.spend(budget)
        rows.append({**budget.public(), "spend_usd": spend,
                     "resets_at": utc_iso(resets) if resets else None,
                     "exceeded": spend is not None and spend >= budget.limit_usd})
    return Page("budgets.html", {"nav": "budgets", "rules": rows})
