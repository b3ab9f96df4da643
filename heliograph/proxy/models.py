"""GET /v1/models: the union of what every usable provider lists, plus configured models.

Bring-your-own-key (Helicone-Auth + the caller's key in Authorization): the caller's key
goes to ONE provider, the one it is for, never to every provider. That provider is the
one named by `Helicone-Target-Provider`, else `openai` (the BYOK convention: an
OpenAI-format key in Authorization is an OpenAI key). Models listed in the config are
added either way (no provider is asked for them).
"""

from __future__ import annotations

import asyncio
import time

import orjson

from heliograph.asgi import Request, send_error, send_json
from heliograph.errors import BadRequest, GatewayError
from heliograph.providers.base import Call
from heliograph.providers.catalog import BUILTIN_PROVIDERS

LIST_TIMEOUT_S = 5.0
BYOK_DEFAULT_PROVIDER = "openai"
TARGET_PROVIDER_HEADER = "helicone-target-provider"


async def list_models(gw, request: Request, send) -> None:
    try:
        principal = await gw.auth.authenticate(request.headers)
    except GatewayError as error:
        await send_error(send, error)
        return
    settings = gw.settings
    if principal.provider_authorization:
        try:
            names = [_byok_provider(settings, request.headers)]
        except GatewayError as error:
            await send_error(send, error)
            return
    else:
        names = [name for name, prov in settings.providers.items()
                 if prov.api_key or name in settings.env_provider_keys
                 or (_keyless(name) and prov.configured)]
    call = Call({}, None, {}, principal.provider_authorization)
    results = await asyncio.gather(*(_fetch(gw, name, call) for name in names))
    seen: dict[str, dict] = {}
    for _name, models in zip(names, results):
        for model in models:
            seen.setdefault(model["id"], model)
    created = int(time.time())
    for name, prov in settings.providers.items():
        for model in prov.models:
            seen.setdefault(model, {"id": model, "object": "model", "created": created,
                                    "owned_by": name})
    await send_json(send, 200, {"object": "list", "data": list(seen.values())})


def _keyless(name: str) -> bool:
    builtin = BUILTIN_PROVIDERS.get(name)
    return builtin is not None and builtin.keyless


def _byok_provider(settings, headers: dict[str, str]) -> str:
    name = (headers.get(TARGET_PROVIDER_HEADER) or BYOK_DEFAULT_PROVIDER).strip().lower()
    if name not in settings.providers:
        raise BadRequest(f"Helicone-Target-Provider names {name!r}, which is not a configured "
                         f"provider; known: {', '.join(sorted(settings.providers))}",
                         code="provider_not_found")
    return name


async def _fetch(gw, name: str, call: Call) -> list[dict]:
    try:
        provider = gw.registry.provider(name)
        reply = await asyncio.wait_for(provider.models(call), LIST_TIMEOUT_S)
        if reply.status != 200:
            return []
        data = orjson.loads(reply.body).get("data") or []
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
    except (TimeoutError, GatewayError, ValueError, AttributeError, TypeError):
        return []
