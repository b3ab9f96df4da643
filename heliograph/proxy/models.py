"""GET /v1/models: the union of what every usable provider lists, plus configured models;
GET /v1/models/{id}: one of them (also named `provider/model`, as requests may name it).

The Anthropic SDK calls the same paths (`models.list`, `models.retrieve`) with its key in
x-api-key and an `anthropic-version` header: such a caller gets Anthropic's shape
(`{"data": [{"type": "model", "id", "display_name", "created_at"}], "has_more",
"first_id", "last_id"}`, paged by `limit`, `after_id`, `before_id`) and Anthropic-shaped
errors (formats/anthropic/models.py).

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

from heliograph.asgi import Request, encode_headers, send_bytes, send_error, send_json
from heliograph.errors import BadRequest, GatewayError, NotFound
from heliograph.providers.base import Call
from heliograph.providers.catalog import BUILTIN_PROVIDERS

LIST_TIMEOUT_S = 5.0
BYOK_DEFAULT_PROVIDER = "openai"
TARGET_PROVIDER_HEADER = "helicone-target-provider"


def _anthropic_caller(request: Request) -> bool:
    return "anthropic-version" in request.headers


async def _fail(request: Request, send, error: GatewayError) -> None:
    if _anthropic_caller(request):
        # Anthropic's shapes are imported for Anthropic callers only (issue 15).
        from heliograph.formats.anthropic.answer_from_openai import error_object
        await send_bytes(send, error.status, orjson.dumps(error_object(error)),
                         encode_headers(error.headers))
    else:
        await send_error(send, error)


async def list_models(gw, request: Request, send) -> None:
    try:
        models = await _collect(gw, request)
        if _anthropic_caller(request):
            from heliograph.formats.anthropic.models import anthropic_page
            await send_json(send, 200, anthropic_page(list(models.values()), request.query))
            return
    except GatewayError as error:
        await _fail(request, send, error)
        return
    await send_json(send, 200, {"object": "list", "data": list(models.values())})


async def get_model(gw, request: Request, send) -> None:
    wanted = request.scope["path_params"]["model"]
    try:
        models = await _collect(gw, request)
        found = models.get(wanted)
        head, _, rest = wanted.partition("/")
        if found is None and rest and head in gw.settings.providers:
            found = models.get(rest)      # `anthropic/claude-…`, as a request names it
            if found is not None:
                found = dict(found, id=wanted)
        if found is None:
            raise NotFound(f"the model {wanted!r} does not exist or is not served by any "
                           "configured provider", code="model_not_found")
    except GatewayError as error:
        await _fail(request, send, error)
        return
    if _anthropic_caller(request):
        from heliograph.formats.anthropic.models import anthropic_model
        found = anthropic_model(found)
    await send_json(send, 200, found)


async def _collect(gw, request: Request) -> dict[str, dict]:
    """Every model the caller may name, by id, in OpenAI's shape."""
    # x-api-key too: the Anthropic SDK lists models with its key there.
    principal = await gw.auth.authenticate(request.headers, True)
    settings = gw.settings
    if principal.provider_authorization:
        names = [_byok_provider(settings, request.headers)]
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
    return seen


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
