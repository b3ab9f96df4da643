"""Gemini API wire format: POST /v1beta/models/{model}:{generateContent,
streamGenerateContent, embedContent, batchEmbedContents}.

Auth is Gemini's: an ``x-goog-api-key`` header or ``?key=``. Like the real API, a missing
key is a 403 and a bad one (``sk-bad``) a 400 ``API_KEY_INVALID``. Streams are SSE only
with ``?alt=sse`` (events end in CRLF CRLF, and there is no [DONE]); without it the whole
answer comes as one JSON array. A 429 says when to retry in a ``RetryInfo`` detail.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from . import faults
from . import gemini_format as fmt
from .behavior import HEADER, Behavior, BehaviorError, parse
from .conversation import InvalidRequest
from .state import STATE_KEY

BAD_KEY = "sk-bad"


def register(app: web.Application) -> None:
    app.router.add_post("/v1beta/models/{target}", dispatch)
    app.router.add_get("/v1beta/models", list_models)


def _error(status: int, message: str | None = None, retry_delay: str | None = None,
           wrong_shape: bool = False) -> web.Response:
    body = fmt.error_body(status, message, retry_delay)
    if wrong_shape:     # details that are no list, a status that is no string
        body["error"].update(details=5, status=[body["error"]["status"]])
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json")


def _check_auth(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        return _error(403, "Method doesn't allow unregistered callers (callers without "
                           "established identity). Please use API Key or other form of API "
                           "consumer identity to call this API.")
    if key == BAD_KEY:
        body = fmt.error_body(400, "API key not valid. Please pass a valid API key.")
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                     "reason": "API_KEY_INVALID",
                                     "domain": "googleapis.com"}]
        return web.json_response(body, status=400)
    return None


async def list_models(request: web.Request) -> web.StreamResponse:
    return _check_auth(request) or web.json_response(fmt.models())


async def dispatch(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["target"].partition(":")
    handler = ACTIONS.get(action)
    if handler is None:
        return _error(404, f"Method {action or '(none)'} is not found for models/{model}.")
    denied = _check_auth(request)
    if denied is not None:
        return denied
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "Invalid JSON payload received.")
    try:
        b = parse(request.headers.get(HEADER), model)
    except BehaviorError as exc:
        return _error(400, str(exc))
    early = await faults.preamble(
        request, b, f"model:{model}",
        lambda status, fast: _error(status, retry_delay=("0s" if fast else "1s")
                                    if status == 429 else None, wrong_shape=b.wrong_shape))
    if early is not None:
        return early
    try:
        return await handler(request, body, model, b)
    except InvalidRequest as exc:
        return _error(400, exc.message)


async def _send(request: web.Request, payload: Any, b: Behavior) -> web.StreamResponse:
    if b.malformed:
        return faults.malformed_json({})
    return await faults.send_json(request, orjson.dumps(payload), {}, truncated=b.truncated,
                                  stall_ms=b.stall_ms)


async def generate(request: web.Request, body: Any, model: str, b: Behavior
                   ) -> web.StreamResponse:
    reply = fmt.GenerateReply(body, model, b)
    request.app[STATE_KEY].rate_limit_headers(reply.total_tokens)
    response = reply.response()
    if b.wrong_shape:
        response = fmt.wrong_shape_response(response)
    return await _send(request, response, b)


async def stream_generate(request: web.Request, body: Any, model: str, b: Behavior
                          ) -> web.StreamResponse:
    reply = fmt.GenerateReply(body, model, b)
    request.app[STATE_KEY].rate_limit_headers(reply.total_tokens)
    chunks = reply.chunks()
    if request.query.get("alt") != "sse":
        return await _send(request, chunks, b)
    events = [(None, orjson.dumps(chunk)) for chunk in chunks]
    return await faults.stream_events(request, events, b, {}, separator=b"\r\n\r\n",
                                      wrong_shape=((None, faults.WRONG_SHAPE_GEMINI_EVENT),))


async def embed(request: web.Request, body: Any, model: str, b: Behavior
                ) -> web.StreamResponse:
    return await _send(request, fmt.embed_content(body, model), b)


async def batch_embed(request: web.Request, body: Any, model: str, b: Behavior
                      ) -> web.StreamResponse:
    answer = fmt.batch_embed_contents(body, model)
    if b.wrong_shape:   # a vector holding a string, an embedding that is no object
        answer["embeddings"] = [{"values": [0.5, "x"]}, "no embedding"]
    return await _send(request, answer, b)


async def count(request: web.Request, body: Any, model: str, b: Behavior
                ) -> web.StreamResponse:
    return await _send(request, fmt.count_tokens(body, model), b)


ACTIONS = {"generateContent": generate, "streamGenerateContent": stream_generate,
           "embedContent": embed, "batchEmbedContents": batch_embed, "countTokens": count}
