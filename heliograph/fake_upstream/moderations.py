"""OpenAI's moderation endpoint (POST /v1/moderations), for Helicone-Moderations-Enabled.

An input is flagged (category `harassment`) when it contains FLAGGED_MARKER, in any case;
every other input passes. `input` is a string or a list of strings (OpenAI's text forms).
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from . import openai_api

FLAGGED_MARKER = "forbidden-topic"
MODEL = "omni-moderation-latest"
CATEGORIES = ("harassment", "hate", "self-harm", "sexual", "violence")


def register(app: web.Application) -> None:
    for prefix in openai_api.PREFIXES:
        app.router.add_post(f"{prefix}/moderations", moderations)


def _result(text: str) -> dict:
    flagged = FLAGGED_MARKER in text.lower()
    categories = {name: flagged and name == "harassment" for name in CATEGORIES}
    scores = {name: 0.97 if flagged else 0.0001 for name in categories}
    return {"flagged": flagged, "categories": categories, "category_scores": scores}


async def moderations(request: web.Request) -> web.Response:
    t0 = time.monotonic()
    denied = openai_api._check_auth(request, t0)
    if denied is not None:
        return denied
    try:
        body = await request.json()
    except ValueError:
        return openai_api._invalid(request, t0, "We could not parse the JSON body of your "
                                   "request.")
    inputs = body.get("input") if isinstance(body, dict) else None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        return openai_api._invalid(request, t0, "'input' must be a string or an array of "
                                   "strings", param="input")
    return web.json_response(
        {"id": "modr-" + secrets.token_hex(12), "model": body.get("model") or MODEL,
         "results": [_result(text) for text in inputs]},
        headers=openai_api._headers(request, t0))
