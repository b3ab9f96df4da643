"""Anthropic wire format: POST /v1/messages (and /v1/messages/count_tokens), also under an
``/anthropic`` prefix so a test can tell providers apart on one port.

Auth is Anthropic's: ``x-api-key``, or ``Authorization: Bearer`` (OAuth tokens, and what
recent SDKs send), ``sk-bad`` refused, plus a required ``anthropic-version`` header.
Responses carry ``request-id`` and the
``anthropic-ratelimit-*`` headers; a 429 adds ``retry-after``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from aiohttp import web

from . import anthropic_format as fmt
from . import faults
from .behavior import HEADER, Behavior, BehaviorError, parse
from .conversation import InvalidRequest, new_id
from .state import STATE_KEY

PREFIXES = ("", "/anthropic")
BAD_KEY = "sk-bad"


def register(app: web.Application) -> None:
    for p in PREFIXES:
        app.router.add_post(f"{p}/v1/messages", messages)
        app.router.add_post(f"{p}/v1/messages/count_tokens", count_tokens)
        if p:  # unprefixed, OpenAI's GET /v1/models hands Anthropic callers over
            app.router.add_get(f"{p}/v1/models", list_models)


def _reset_at(seconds: float) -> str:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _headers(request: web.Request, tokens: int = 0, exhausted: bool = False) -> dict[str, str]:
    limits = request.app[STATE_KEY].rate_limit_headers(tokens, exhausted=exhausted)
    reset = _reset_at(1 if exhausted else 0)
    out = {"request-id": new_id("req_011", 24), "anthropic-organization-id": "fake-org-id"}
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        source = "requests" if kind == "requests" else "tokens"
        out[f"anthropic-ratelimit-{kind}-limit"] = limits[f"x-ratelimit-limit-{source}"]
        out[f"anthropic-ratelimit-{kind}-remaining"] = limits[f"x-ratelimit-remaining-{source}"]
        out[f"anthropic-ratelimit-{kind}-reset"] = reset
    return out


def _error(request: web.Request, status: int, message: str | None = None,
           fast_retry: bool = False, wrong_shape: bool = False) -> web.Response:
    headers = _headers(request, exhausted=status == 429)
    if status == 429:
        headers["retry-after"] = "0" if fast_retry else "1"
    body = fmt.error_body(status, message)
    if wrong_shape:     # an error type that is no string
        body["error"]["type"] = [body["error"]["type"]]
    return web.Response(status=status, body=orjson.dumps(body),
                        headers=headers, content_type="application/json")


def _check_auth(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-api-key", "").strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not key and scheme.lower() == "bearer":
        key = token.strip()
    if not key:
        return _error(request, 401, "x-api-key header is required")
    if key == BAD_KEY:
        return _error(request, 401, "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return _error(request, 400, "anthropic-version: header is required")
    return None


async def _begin(request: web.Request) -> tuple[Any, Behavior] | web.StreamResponse:
    denied = _check_auth(request)
    if denied is not None:
        return denied
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(request, 400, "There was an error parsing the body of your request")
    model = body.get("model") if isinstance(body, dict) else None
    try:
        b = parse(request.headers.get(HEADER), model)
    except BehaviorError as exc:
        return _error(request, 400, str(exc))
    early = await faults.preamble(request, b, f"model:{model}",
                                  lambda status, fast: _error(request, status,
                                                              fast_retry=fast,
                                                              wrong_shape=b.wrong_shape))
    return early if early is not None else (body, b)


async def messages(request: web.Request) -> web.StreamResponse:
    begun = await _begin(request)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    try:
        reply = fmt.MessageReply(body, b)
    except InvalidRequest as exc:
        return _error(request, 400, exc.message)
    headers = _headers(request, reply.total_tokens)
    if not body.get("stream"):
        if b.malformed:
            return faults.malformed_json(headers)
        if b.foreign_object:
            return await faults.send_json(request, orjson.dumps({"type": "error", "error": {
                "type": "api_error", "message": "answered by something else"}}), headers)
        message = reply.message()
        if b.wrong_shape:
            message = fmt.wrong_shape_message(message)
        return await faults.send_json(request, orjson.dumps(message), headers,
                                      truncated=b.truncated, stall_ms=b.stall_ms)
    events = [(name, orjson.dumps(data)) for name, data in reply.events()]
    return await faults.stream_events(request, events, b, headers)


async def list_models(request: web.Request) -> web.StreamResponse:
    denied = _check_auth(request)
    return denied or web.json_response(fmt.models(), headers=_headers(request))


async def count_tokens(request: web.Request) -> web.StreamResponse:
    begun = await _begin(request)
    if isinstance(begun, web.StreamResponse):
        return begun
    try:
        counted = fmt.count_tokens(begun[0])
    except InvalidRequest as exc:
        return _error(request, 400, exc.message)
    return web.json_response(counted, headers=_headers(request))
