"""OpenAI wire format: routes (with and without the /v1 prefix) and handlers.

The handlers take the auth check and the served model as parameters, so Azure OpenAI
(``azure_api``) serves the same bodies behind its own URLs and ``api-key`` header.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from . import anthropic_api, faults, responses_format
from . import openai_format as fmt
from .behavior import HEADER, Behavior, BehaviorError, parse
from .state import STATE_KEY

PREFIXES = ("/v1", "")
BAD_KEY = "sk-bad"
NO_KEY_MESSAGE = ("You didn't provide an API key. You need to provide your API key in an "
                  "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


def register(app: web.Application) -> None:
    for p in PREFIXES:
        app.router.add_post(f"{p}/chat/completions", chat_completions)
        app.router.add_post(f"{p}/embeddings", embeddings)
        app.router.add_post(f"{p}/responses", responses)
        app.router.add_post(f"{p}/responses/compact", responses_compact)
        app.router.add_get(f"{p}/responses/{{id}}", stored_response)
        app.router.add_delete(f"{p}/responses/{{id}}", stored_response)
        app.router.add_get(f"{p}/models", list_models)
        app.router.add_get(f"{p}/models/{{model}}", get_model)


# -- helpers -------------------------------------------------------------------

def _headers(request: web.Request, t0: float) -> dict[str, str]:
    return {
        "x-request-id": "req_" + secrets.token_hex(16),
        "openai-version": "2020-10-01",
        "openai-organization": "fake-org",
        "openai-processing-ms": str(max(1, round((time.monotonic() - t0) * 1000))),
    }


def _json(status: int, body: Any, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), headers=headers,
                        content_type="application/json")


def _invalid(request: web.Request, t0: float, message: str, param: str | None = None,
             status: int = 400) -> web.Response:
    return _json(status, fmt.error_body(message, "invalid_request_error", None, param),
                 _headers(request, t0))


def _error_factory(request: web.Request, t0: float) -> faults.ErrorFactory:
    def make(status: int, fast_retry: bool) -> web.Response:
        headers = _headers(request, t0)
        if status == 429:
            headers |= request.app[STATE_KEY].rate_limit_headers(0, exhausted=True)
            headers["retry-after"] = "0" if fast_retry else "1"
            headers["retry-after-ms"] = "10" if fast_retry else "1000"
        return _json(status, fmt.error_for_status(status), headers)
    return make


def _check_auth(request: web.Request, t0: float) -> web.Response | None:
    if request.headers.get("x-fake-keyless") == "1" and "Authorization" not in request.headers:
        return None  # acts like a local server (Ollama, vLLM) that takes no key
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return _json(401, fmt.error_body(NO_KEY_MESSAGE, "invalid_request_error"),
                     _headers(request, t0))
    if key == BAD_KEY:
        return _json(401, fmt.error_for_status(401), _headers(request, t0))
    return None


AuthCheck = Callable[[web.Request, float], "web.Response | None"]


async def _begin(request: web.Request, t0: float, with_body: bool,
                 check_auth: AuthCheck = _check_auth
                 ) -> tuple[Any, Behavior] | web.StreamResponse:
    """Auth, JSON body, behaviour, then the shared faults; a response ends the request."""
    denied = check_auth(request, t0)
    if denied is not None:
        return denied
    body: Any = None
    if with_body:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _invalid(request, t0, "We could not parse the JSON body of your request.")
    model = body.get("model") if isinstance(body, dict) else request.match_info.get("model")
    try:
        b = parse(request.headers.get(HEADER), model)
    except BehaviorError as exc:
        return _invalid(request, t0, str(exc))
    early = await faults.preamble(request, b, f"model:{model}", _error_factory(request, t0))
    return early if early is not None else (body, b)


async def _send(request: web.Request, t0: float, body: Any, b: Behavior,
                tokens: int) -> web.StreamResponse:
    headers = _headers(request, t0) | request.app[STATE_KEY].rate_limit_headers(tokens)
    if b.malformed:
        return faults.malformed_json(headers)
    if b.wrong_shape and isinstance(body, dict) and "choices" in body:
        # JSON of the wrong shape: a message that is a string, usage that is no object, a
        # model that is a list.
        body = dict(body, choices=[dict(body["choices"][0], message="not an object"),
                                   "no choice"], usage="none", model=["not a string"])
    return await faults.send_json(request, orjson.dumps(body), headers,
                                  truncated=b.truncated, stall_ms=b.stall_ms)


# -- handlers ------------------------------------------------------------------

async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await serve_chat(request, _check_auth)


async def serve_chat(request: web.Request, check_auth: AuthCheck, model: str | None = None,
                     decorate: Callable[[dict, list | None], None] | None = None
                     ) -> web.StreamResponse:
    """``model``: the model to answer as (Azure: the deployment's); ``decorate(body,
    chunks)`` adds a dialect's extra fields to the completion or the chunk list."""
    t0 = time.monotonic()
    begun = await _begin(request, t0, True, check_auth)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    try:
        fmt.validate_chat(body)
        reply = fmt.ChatReply(dict(body, model=model) if model else body, b)
    except fmt.InvalidRequest as exc:
        return _invalid(request, t0, exc.message, exc.param)
    if not body.get("stream"):
        completion = reply.completion()
        if decorate is not None:
            decorate(completion, None)
        return await _send(request, t0, completion, b, reply.total_tokens)
    headers = _headers(request, t0) | request.app[STATE_KEY].rate_limit_headers(
        reply.total_tokens)
    chunks = reply.chunks()
    if decorate is not None:
        decorate({}, chunks)
    events = [(None, orjson.dumps(chunk)) for chunk in chunks]
    return await faults.stream_events(request, events, b, headers, final=b"[DONE]")


async def responses(request: web.Request) -> web.StreamResponse:
    return await serve_responses(request, _check_auth)


async def serve_responses(request: web.Request, check_auth: AuthCheck,
                          model: str | None = None) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True, check_auth)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    try:
        reply = responses_format.ResponseReply(body, b, model)
    except fmt.InvalidRequest as exc:
        return _invalid(request, t0, exc.message, exc.param)
    if not body.get("stream"):
        response = reply.response()
        if body.get("store") is not False:
            request.app[STATE_KEY].keep_response(response)
        return await _send(request, t0, response, b, reply.total_tokens)
    headers = _headers(request, t0) | request.app[STATE_KEY].rate_limit_headers(
        reply.total_tokens)
    events = [(e["type"], orjson.dumps(e)) for e in reply.events()]
    return await faults.stream_events(request, events, b, headers,
                                      wrong_shape=faults.WRONG_SHAPE_RESPONSES_EVENTS)


async def responses_compact(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    try:
        compacted = responses_format.compacted(body, b)
    except fmt.InvalidRequest as exc:
        return _invalid(request, t0, exc.message, exc.param)
    return await _send(request, t0, compacted, b, compacted["usage"]["total_tokens"])


async def stored_response(request: web.Request) -> web.StreamResponse:
    """GET / DELETE /responses/{id}: a response this server created (with store on)."""
    t0 = time.monotonic()
    begun = await _begin(request, t0, with_body=False)
    if isinstance(begun, web.StreamResponse):
        return begun
    response_id = request.match_info["id"]
    responses = request.app[STATE_KEY].responses
    if response_id not in responses:
        return _json(404, fmt.error_body(f"Response with id '{response_id}' not found.",
                                         "invalid_request_error", None, "response_id"),
                     _headers(request, t0))
    if request.method == "DELETE":
        del responses[response_id]
        return _json(200, {"id": response_id, "object": "response", "deleted": True},
                     _headers(request, t0))
    return await _send(request, t0, responses[response_id], begun[1], 0)


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await serve_embeddings(request, _check_auth)


async def serve_embeddings(request: web.Request, check_auth: AuthCheck,
                           model: str | None = None) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True, check_auth)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    try:
        out = fmt.embeddings(dict(body, model=model) if model and isinstance(body, dict)
                             else body, b)
    except fmt.InvalidRequest as exc:
        return _invalid(request, t0, exc.message, exc.param)
    return await _send(request, t0, out, b, out["usage"]["total_tokens"])


async def list_models(request: web.Request) -> web.StreamResponse:
    # OpenAI and Anthropic share this path on one port; Anthropic callers always send
    # anthropic-version.
    if "anthropic-version" in request.headers:
        return await anthropic_api.list_models(request)
    t0 = time.monotonic()
    begun = await _begin(request, t0, with_body=False)
    if isinstance(begun, web.StreamResponse):
        return begun
    return await _send(request, t0, fmt.models(), begun[1], 0)


async def get_model(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, with_body=False)
    if isinstance(begun, web.StreamResponse):
        return begun
    model = request.match_info["model"]
    known = {m["id"]: m for m in fmt.models()["data"]}
    if model not in known:
        return _json(404, fmt.error_body(f"The model '{model}' does not exist",
                                         "invalid_request_error", "model_not_found", "model"),
                     _headers(request, t0))
    return await _send(request, t0, known[model], begun[1], 0)


def not_found(request: web.Request, status: int) -> web.Response:
    """OpenAI-shaped answer for unknown routes / methods."""
    return _json(status, fmt.error_body(f"Invalid URL ({request.method} {request.path})",
                                        "invalid_request_error"),
                 _headers(request, time.monotonic()))
