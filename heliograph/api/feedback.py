"""POST /v1/request/{request_id}/feedback ({"rating": bool}) and /score
({"scores": {name: number}}), Helicone's paths. Writes, so they go to the store."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from heliograph.analytics.filters import check_parameters
from heliograph.api._common import endpoint, path_param
from heliograph.api._recent import once_stored
from heliograph.asgi import Request
from heliograph.errors import BadRequest, NotFound
from heliograph.routes import Route
from heliograph.scores import scores_from_body

MAX_BODY_BYTES = 1024 * 1024


async def _json_body(request: Request) -> Any:
    check_parameters(request.query)
    raw = await request.body(MAX_BODY_BYTES)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None


def _found(found: bool, request_id: str) -> dict:
    if not found:
        raise NotFound(f"no request {request_id!r}")
    # Helicone answers {"data": null, "error": null}; id and ok say which, and that it held.
    return {"data": None, "error": None, "id": request_id, "ok": True}


@endpoint
async def feedback(gw: Any, request: Request, org: str) -> dict:
    body = await _json_body(request)
    rating = body.get("rating") if isinstance(body, dict) else None
    if not isinstance(rating, bool):
        raise BadRequest('feedback body must be {"rating": true|false}')
    request_id = path_param(request, "request_id")
    return _found(await once_stored(gw.journal.directory, request_id, lambda: asyncio.to_thread(
        gw.store.set_feedback, org, request_id, rating)), request_id)


@endpoint
async def score(gw: Any, request: Request, org: str) -> dict:
    scores = scores_from_body(await _json_body(request))
    request_id = path_param(request, "request_id")
    return _found(await once_stored(gw.journal.directory, request_id, lambda: asyncio.to_thread(
        gw.store.set_score, org, request_id, scores)), request_id)


ROUTES = [
    Route("POST", "/v1/request/{request_id}/feedback", feedback),
    Route("POST", "/v1/request/{request_id}/score", score),
]
