"""The rest of OpenAI's API, faked: legacy completions (streamed too), moderations,
images (generations; edits and variations as multipart uploads), audio (speech as audio
bytes; transcriptions and translations as multipart uploads), files (upload, list, get,
delete, content) and batches (create, list, get, cancel).

Answers are deterministic functions of the request, shaped as OpenAI documents them
(usage included where OpenAI sends it: tokens for gpt-image-* and gpt-4o-*-transcribe,
seconds of audio for whisper-1). Behaviours (`x-fake-behavior`, `fake-` model tokens)
work as on chat. Multipart forms are read with the standard library's email parser:
nothing here shares code with the gateway's own form reader.
"""

from __future__ import annotations

import math
import secrets
import time
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import orjson
from aiohttp import web

from . import faults
from . import openai_format as fmt
from .behavior import HEADER, BehaviorError, parse
from .openai_api import _begin, _check_auth, _error_factory, _headers, _invalid, _json, _send
from .state import STATE_KEY

FILES: web.AppKey[dict[str, dict]] = web.AppKey("fake_files", dict)
BATCHES: web.AppKey[dict[str, dict]] = web.AppKey("fake_batches", dict)
# Fake audio: this many bytes per character of speech input; a transcription's audio is
# this many bytes per second.
SPEECH_BYTES_PER_CHAR = 64
AUDIO_BYTES_PER_SECOND = 4000


def register(app: web.Application) -> None:
    app[FILES] = {}
    app[BATCHES] = {}
    for p in ("/v1", ""):
        app.router.add_post(f"{p}/completions", completions)
        app.router.add_post(f"{p}/moderations", moderations)
        app.router.add_post(f"{p}/images/generations", image_generations)
        app.router.add_post(f"{p}/images/edits", image_uploads)
        app.router.add_post(f"{p}/images/variations", image_uploads)
        app.router.add_post(f"{p}/audio/speech", speech)
        app.router.add_post(f"{p}/audio/transcriptions", transcriptions)
        app.router.add_post(f"{p}/audio/translations", transcriptions)
        app.router.add_post(f"{p}/files", upload_file)
        app.router.add_get(f"{p}/files", list_files)
        app.router.add_get(f"{p}/files/{{file_id}}", get_file)
        app.router.add_delete(f"{p}/files/{{file_id}}", delete_file)
        app.router.add_get(f"{p}/files/{{file_id}}/content", file_content)
        app.router.add_post(f"{p}/batches", create_batch)
        app.router.add_get(f"{p}/batches", list_batches)
        app.router.add_get(f"{p}/batches/{{batch_id}}", get_batch)
        app.router.add_post(f"{p}/batches/{{batch_id}}/cancel", cancel_batch)


def _words(text: str) -> int:
    return max(1, len(text.split()))


# -- completions and moderations -------------------------------------------------

def _prompt_text(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return " ".join(prompt)
    return None


async def completions(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return _invalid(request, t0, "you must provide a model parameter", "model")
    prompt = _prompt_text(body.get("prompt"))
    if prompt is None:
        return _invalid(request, t0, "prompt must be a string or a list of strings", "prompt")
    words = ["Completed", "after", *prompt.split()[:6]]
    prompt_tokens = b.usage[0] if b.usage else _words(prompt)
    completion_tokens = b.usage[1] if b.usage else len(words)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    base = {"id": "cmpl-" + secrets.token_hex(12), "object": "text_completion",
            "created": int(time.time()), "model": body["model"]}
    if not body.get("stream"):
        answer = dict(base, choices=[{"text": " ".join(words), "index": 0, "logprobs": None,
                                      "finish_reason": "stop"}], usage=usage)
        return await _send(request, t0, answer, b, usage["total_tokens"])
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = []
    for i, word in enumerate(words):
        chunk = dict(base, choices=[{"text": (" " if i else "") + word, "index": 0,
                                     "logprobs": None,
                                     "finish_reason": "stop" if i == len(words) - 1
                                     else None}])
        if with_usage:
            chunk["usage"] = None
        events.append((None, orjson.dumps(chunk)))
    if with_usage:
        events.append((None, orjson.dumps(dict(base, choices=[], usage=usage))))
    headers = _headers(request, t0) | request.app[STATE_KEY].rate_limit_headers(
        usage["total_tokens"])
    return await faults.stream_events(request, events, b, headers, final=b"[DONE]")


MODERATION_CATEGORIES = ("harassment", "hate", "self-harm", "sexual", "violence")


async def moderations(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    inputs = body.get("input") if isinstance(body, dict) else None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        return _invalid(request, t0, "input must be a string or a list", "input")
    results = []
    for item in inputs:
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        violent = "kill" in text.lower()
        results.append({"flagged": violent,
                        "categories": {c: violent and c == "violence"
                                       for c in MODERATION_CATEGORIES},
                        "category_scores": {c: 0.9 if violent and c == "violence" else 0.001
                                            for c in MODERATION_CATEGORIES}})
    answer = {"id": "modr-" + secrets.token_hex(8),
              "model": body.get("model") or "omni-moderation-latest", "results": results}
    return await _send(request, t0, answer, b, 0)


# -- images ------------------------------------------------------------------------

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _images(model: str, prompt: str, n: int, response_format: str | None) -> dict:
    token_model = model.startswith(("gpt-image", "chatgpt-image"))
    out: dict[str, Any] = {"created": int(time.time()), "data": [
        {"b64_json": PIXEL} if token_model or response_format == "b64_json"
        else {"url": f"https://fake.invalid/images/{secrets.token_hex(6)}.png",
              "revised_prompt": prompt}
        for _ in range(n)]}
    if token_model:
        text_tokens = _words(prompt)
        out["usage"] = {"input_tokens": text_tokens + 10, "output_tokens": 272 * n,
                        "total_tokens": text_tokens + 10 + 272 * n,
                        "input_tokens_details": {"text_tokens": text_tokens,
                                                 "image_tokens": 10}}
    return out


def _count(value: Any, default: int) -> int | None:
    if value is None:
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= 10 else None


async def image_generations(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str) or not prompt:
        return _invalid(request, t0, "prompt is required", "prompt")
    n = _count(body.get("n"), 1)
    if n is None:
        return _invalid(request, t0, "n must be from 1 to 10", "n")
    answer = _images(body.get("model") or "dall-e-2", prompt, n, body.get("response_format"))
    return await _send(request, t0, answer, b, 0)


async def _form(request: web.Request, t0: float
                ) -> tuple[dict[str, str], dict[str, bytes], Any] | web.StreamResponse:
    """(text fields, file parts by field name, behaviour) of a multipart request."""
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    content_type = request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return _invalid(request, t0, "this endpoint takes multipart/form-data")
    raw = await request.read()
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) else b""
            if not isinstance(name, str):
                continue
            if part.get_filename() is not None:
                files[name] = payload
            else:
                fields[name] = payload.decode("utf-8", "replace")
    try:
        b = parse(request.headers.get(HEADER), fields.get("model"))
    except BehaviorError as exc:
        return _invalid(request, t0, str(exc))
    early = await faults.preamble(request, b, f"model:{fields.get('model')}",
                                  _error_factory(request, t0))
    return early if early is not None else (fields, files, b)


async def image_uploads(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    formed = await _form(request, t0)
    if isinstance(formed, web.StreamResponse):
        return formed
    fields, files, b = formed
    if not any(name.startswith("image") for name in files):
        return _invalid(request, t0, "an image file is required", "image")
    edits = request.path.endswith("/edits")
    prompt = fields.get("prompt", "")
    if edits and not prompt:
        return _invalid(request, t0, "prompt is required", "prompt")
    n = _count(fields.get("n"), 1)
    if n is None:
        return _invalid(request, t0, "n must be from 1 to 10", "n")
    answer = _images(fields.get("model") or "dall-e-2", prompt or "variation", n,
                     fields.get("response_format"))
    return await _send(request, t0, answer, b, 0)


# -- audio -------------------------------------------------------------------------

async def speech(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, _b = begun
    for name in ("model", "input", "voice"):
        if not isinstance(body, dict) or not isinstance(body.get(name), str) \
                or not body[name]:
            return _invalid(request, t0, f"{name} is required", name)
    audio_format = body.get("response_format") or "mp3"
    media = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg",
             "aac": "audio/aac", "flac": "audio/flac", "pcm": "audio/pcm"}.get(audio_format)
    if media is None:
        return _invalid(request, t0, f"unknown response_format {audio_format!r}",
                        "response_format")
    data = (b"FAKEAUDIO" * (SPEECH_BYTES_PER_CHAR * len(body["input"]) // 9 + 1))
    return web.Response(body=data[:SPEECH_BYTES_PER_CHAR * len(body["input"])],
                        content_type=media, headers=_headers(request, t0))


async def transcriptions(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    formed = await _form(request, t0)
    if isinstance(formed, web.StreamResponse):
        return formed
    fields, files, b = formed
    model = fields.get("model")
    if not model:
        return _invalid(request, t0, "model is required", "model")
    audio = files.get("file")
    if audio is None:
        return _invalid(request, t0, "file is required", "file")
    seconds = max(1, math.ceil(len(audio) / AUDIO_BYTES_PER_SECOND))
    text = f"Fake transcript of {len(audio)} bytes of audio."
    if fields.get("response_format") == "text":
        return web.Response(text=text, content_type="text/plain",
                            headers=_headers(request, t0))
    answer: dict[str, Any] = {"text": text}
    if "transcribe" in model:
        audio_tokens, out_tokens = seconds * 10, _words(text)
        answer["usage"] = {"type": "tokens", "input_tokens": audio_tokens,
                           "output_tokens": out_tokens,
                           "total_tokens": audio_tokens + out_tokens,
                           "input_token_details": {"audio_tokens": audio_tokens,
                                                   "text_tokens": 0}}
    else:
        answer["usage"] = {"type": "duration", "seconds": seconds}
    return await _send(request, t0, answer, b, 0)


# -- files and batches -------------------------------------------------------------

def _missing(request: web.Request, t0: float, what: str, ident: str) -> web.Response:
    return _json(404, fmt.error_body(f"No such {what}: {ident}", "invalid_request_error",
                                     None, "id"), _headers(request, t0))


async def upload_file(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    formed = await _form(request, t0)
    if isinstance(formed, web.StreamResponse):
        return formed
    fields, files, b = formed
    if "file" not in files or not fields.get("purpose"):
        return _invalid(request, t0, "file and purpose are required", "file")
    file_id = "file-" + secrets.token_hex(12)
    entry = {"id": file_id, "object": "file", "bytes": len(files["file"]),
             "created_at": int(time.time()), "filename": "upload",
             "purpose": fields["purpose"], "status": "processed"}
    request.app[FILES][file_id] = {"meta": entry, "content": files["file"]}
    return await _send(request, t0, entry, b, 0)


async def list_files(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    purpose = request.query.get("purpose")
    data = [f["meta"] for f in request.app[FILES].values()
            if purpose is None or f["meta"]["purpose"] == purpose]
    return _json(200, {"object": "list", "data": data, "has_more": False},
                 _headers(request, t0))


async def _stored_file(request: web.Request, t0: float) -> dict | web.Response:
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    file_id = request.match_info["file_id"]
    stored = request.app[FILES].get(file_id)
    return stored if stored is not None else _missing(request, t0, "file", file_id)


async def get_file(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    stored = await _stored_file(request, t0)
    if isinstance(stored, web.Response):
        return stored
    return _json(200, stored["meta"], _headers(request, t0))


async def delete_file(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    stored = await _stored_file(request, t0)
    if isinstance(stored, web.Response):
        return stored
    del request.app[FILES][stored["meta"]["id"]]
    return _json(200, {"id": stored["meta"]["id"], "object": "file", "deleted": True},
                 _headers(request, t0))


async def file_content(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    stored = await _stored_file(request, t0)
    if isinstance(stored, web.Response):
        return stored
    return web.Response(body=stored["content"], content_type="application/octet-stream",
                        headers=_headers(request, t0))


BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions",
                   "/v1/responses")


async def create_batch(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    if not isinstance(body, dict):
        return _invalid(request, t0, "the body must be an object")
    file_id = body.get("input_file_id")
    if file_id not in request.app[FILES]:
        return _invalid(request, t0, f"No such file: {file_id}", "input_file_id")
    if body.get("endpoint") not in BATCH_ENDPOINTS:
        return _invalid(request, t0, "endpoint must be one of " + ", ".join(BATCH_ENDPOINTS),
                        "endpoint")
    if body.get("completion_window") != "24h":
        return _invalid(request, t0, "completion_window must be 24h", "completion_window")
    batch = {"id": "batch_" + secrets.token_hex(12), "object": "batch",
             "endpoint": body["endpoint"], "input_file_id": file_id,
             "completion_window": "24h", "status": "validating",
             "created_at": int(time.time()), "output_file_id": None, "error_file_id": None,
             "errors": None, "metadata": body.get("metadata"),
             "request_counts": {"total": 0, "completed": 0, "failed": 0}}
    request.app[BATCHES][batch["id"]] = batch
    return await _send(request, t0, batch, b, 0)


async def list_batches(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    return _json(200, {"object": "list", "data": list(request.app[BATCHES].values()),
                       "has_more": False}, _headers(request, t0))


async def get_batch(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    batch = request.app[BATCHES].get(request.match_info["batch_id"])
    if batch is None:
        return _missing(request, t0, "batch", request.match_info["batch_id"])
    return _json(200, batch, _headers(request, t0))


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    batch = request.app[BATCHES].get(request.match_info["batch_id"])
    if batch is None:
        return _missing(request, t0, "batch", request.match_info["batch_id"])
    batch["status"] = "cancelling"
    return _json(200, batch, _headers(request, t0))
