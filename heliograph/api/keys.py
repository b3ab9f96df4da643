"""Gateway keys over HTTP, for admin keys: POST /api/v1/keys (the secret in the answer,
once), GET /api/v1/keys (never more than the short display prefix), DELETE
/api/v1/keys/{key_id} (revoked). An admin key manages its own organization's keys only;
any other key gets a 403. Writes and key reads go to the store, like `heliograph keys`.

A revoked key stops working within the auth cache's TTL (proxy/auth.KEY_CACHE_TTL_S, 10 s)
in every process that had seen it; an expiry holds to the second.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

from heliograph.api._admin import admin_json, json_body
from heliograph.api._common import path_param
from heliograph.asgi import Request
from heliograph.errors import BadRequest, NotFound
from heliograph.keys import display_prefix, generate_key, hash_key, shown_prefix
from heliograph.records import utc_iso
from heliograph.routes import Route
from heliograph.store.base import KeyRow

MAX_NAME_CHARS = 200
MAX_ALLOWED_MODELS = 100
MAX_EXPIRY_DAYS = 36_500
FIELDS = frozenset({"name", "expires_at", "expires_in_days", "allowed_models", "admin"})

def key_json(row: KeyRow) -> dict:
    """A key as listed: its display prefix only, never the secret or its hash."""
    return {"id": row.id, "name": row.name, "prefix": shown_prefix(row.prefix),
            "created_at": row.created_at, "expires_at": row.expires_at,
            "revoked": row.revoked_at is not None, "revoked_at": row.revoked_at,
            "admin": row.admin,
            "allowed_models": list(row.allowed_models)
            if row.allowed_models is not None else None}


def _expiry(body: dict) -> str | None:
    at, days = body.get("expires_at"), body.get("expires_in_days")
    if at is not None and days is not None:
        raise BadRequest("give expires_at or expires_in_days, not both")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int | float) \
                or not 0 < days <= MAX_EXPIRY_DAYS:
            raise BadRequest(f"expires_in_days must be a number of days above 0 and at "
                             f"most {MAX_EXPIRY_DAYS}, got {days!r}")
        return utc_iso(time.time() + days * 86400)
    if at is None:
        return None
    if not isinstance(at, str):
        raise BadRequest("expires_at must be an ISO 8601 timestamp string")
    try:
        when = datetime.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"expires_at must be an ISO 8601 timestamp, got {at!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)  # as the query API reads timestamps
    if when.timestamp() <= time.time():
        raise BadRequest(f"expires_at is in the past: {at!r}")
    return utc_iso(when.timestamp())


def _allowed_models(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_ALLOWED_MODELS or \
            not all(isinstance(m, str) and m.strip() and len(m) <= MAX_NAME_CHARS
                    for m in value):
        raise BadRequest(f"allowed_models must be a list of 1 to {MAX_ALLOWED_MODELS} "
                         "model names")
    return tuple(dict.fromkeys(value))


async def _body(request: Request) -> dict:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest('body must be a JSON object: {"name": "..."}')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; accepted: "
                         f"{', '.join(sorted(FIELDS))}", code="unknown_parameter")
    return body


@admin_json("keys")
async def create_key(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME_CHARS} "
                         "characters")
    admin = body.get("admin", False)
    if not isinstance(admin, bool):
        raise BadRequest("admin must be true or false")
    expires_at = _expiry(body)
    allowed = _allowed_models(body.get("allowed_models"))
    secret = generate_key()
    row = await asyncio.to_thread(gw.store.create_key, hash_key(secret),
                                  display_prefix(secret), name, principal.organization,
                                  admin, expires_at, allowed)
    return 201, {**key_json(row), "key": secret}


@admin_json("keys")
async def list_keys(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    rows = await asyncio.to_thread(gw.store.list_keys, principal.organization)
    return 200, {"data": [key_json(row) for row in rows]}


@admin_json("keys")
async def revoke_key(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    key_id = path_param(request, "key_id")
    org = principal.organization
    await asyncio.to_thread(gw.store.revoke_key, key_id, org)
    # Revoking twice is not an error: the answer is the key as it now is.
    row = await asyncio.to_thread(gw.store.get_key, key_id, org)
    if row is None:
        raise NotFound(f"no key {key_id!r} in this organization")
    return 200, key_json(row)


ROUTES = [
    Route("POST", "/api/v1/keys", create_key),
    Route("GET", "/api/v1/keys", list_keys),
    Route("DELETE", "/api/v1/keys/{key_id}", revoke_key),
]
