"""Per-request webhooks over HTTP, for admin keys: POST/GET /api/v1/webhooks, GET/DELETE
/api/v1/webhooks/{webhook_id}. The creation answer holds the signing secret, once.
Deliveries come from the background host (heliograph/alerts/delivery.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from heliograph.alerts import repo
from heliograph.alerts.model import check_webhook
from heliograph.api._admin import admin_json, found, json_body
from heliograph.api._common import path_param
from heliograph.asgi import Request
from heliograph.routes import Route


@admin_json("webhooks")
async def create_webhook(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    hook = check_webhook(await json_body(request), principal.organization)
    await asyncio.to_thread(repo.save_webhook, gw.store, hook)
    return 201, {**hook.public(), "signing_secret": hook.secret}


@admin_json("webhooks")
async def list_webhooks(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    hooks = await asyncio.to_thread(repo.list_webhooks, gw.store, principal.organization)
    return 200, {"data": [hook.public() for hook in hooks]}


@admin_json("webhooks")
async def get_webhook(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    hook_id = path_param(request, "webhook_id")
    hook = await found("webhook", repo.get_webhook, gw, principal.organization, hook_id)
    deliveries = await asyncio.to_thread(repo.list_deliveries, gw.store,
                                         principal.organization, hook.id, 50)
    return 200, {**hook.public(), "deliveries": deliveries}


@admin_json("webhooks")
async def delete_webhook(gw: Any, request: Request, principal: Any) -> tuple[int, dict]:
    hook_id = path_param(request, "webhook_id")
    await found("webhook", repo.delete_webhook, gw, principal.organization, hook_id)
    return 200, {"id": hook_id, "deleted": True}


ROUTES = [
    Route("POST", "/api/v1/webhooks", create_webhook),
    Route("GET", "/api/v1/webhooks", list_webhooks),
    Route("GET", "/api/v1/webhooks/{webhook_id}", get_webhook),
    Route("DELETE", "/api/v1/webhooks/{webhook_id}", delete_webhook),
]
