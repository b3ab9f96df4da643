"""Settings pages: keys (admin keys only: create — the secret shown once — list by
prefix, revoke), alerts and budgets (their rules come from the alerts package when it
provides them; until then the page says none are configured)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

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


def _rules(gw: Any, kind: str, organization: str) -> list[dict] | None:
    """The organization's alert rules or budgets as the alerts package lists them
    (`store.list_alerts(org)` / `store.list_budgets(org)`, dicts shaped like the
    /api/v1/alerts answers), or None while no such method exists."""
    lister = getattr(gw.store, f"list_{kind}", None)
    return None if lister is None else lister(organization)


@page()
async def alerts(ctx: Context) -> Page:
    rules = await asyncio.to_thread(_rules, ctx.gw, "alerts", ctx.org)
    return Page("alerts.html", {"nav": "alerts", "rules": rules or [],
                                "available": rules is not None})


@page()
async def budgets(ctx: Context) -> Page:
    rules = await asyncio.to_thread(_rules, ctx.gw, "budgets", ctx.org)
    return Page("budgets.html", {"nav": "budgets", "rules": rules or [],
                                 "available": rules is not None})
