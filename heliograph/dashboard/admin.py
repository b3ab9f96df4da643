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


HISTORY_SHOWN = 50


def _alerts_repo() -> Any:
    """The alerts package's data access (heliograph/alerts/repo.py, #11), or None in a
    build without it: the pages then say nothing is configured."""
    try:
        from heliograph.alerts import repo  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return repo


def _alerts(store: Any, organization: str) -> tuple[list[dict], list[dict]] | None:
    repo = _alerts_repo()
    if repo is None:
        return None
    rules = [rule.public() for rule in repo.list_rules(store, organization)]
    return rules, repo.list_history(store, organization, None, HISTORY_SHOWN)


def _budgets(store: Any, organization: str) -> list[dict] | None:
    repo = _alerts_repo()
    return None if repo is None else [b.public() for b in repo.list_budgets(store, organization)]


@page()
async def alerts(ctx: Context) -> Page:
    found = await asyncio.to_thread(_alerts, ctx.gw.store, ctx.org)
    rules, history = found if found is not None else ([], [])
    names = {rule["id"]: rule["name"] for rule in rules}
    return Page("alerts.html", {"nav": "alerts", "rules": rules, "history": history,
                                "names": names, "available": found is not None})


@page()
async def budgets(ctx: Context) -> Page:
    rules = await asyncio.to_thread(_budgets, ctx.gw.store, ctx.org)
    return Page("budgets.html", {"nav": "budgets", "rules": rules or [],
                                 "available": rules is not None})
