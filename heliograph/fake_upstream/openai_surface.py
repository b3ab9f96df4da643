"""The rest of OpenAI's API, faked: legacy completions (streamed too), images
(generations; edits and variations as multipart uploads), audio (speech as audio bytes;
transcriptions and translations as multipart uploads). Files and batches are in
openai_files.py, moderations in moderations.py.

Answers are deterministic functions of the request, shaped as OpenAI documents them
(usage included where OpenAI sends it: tokens for gpt-image-* and gpt-4o-*-transcribe,
seconds of audio for whisper-1). Behaviours (`x-fake-behavior`, `fake-` model tokens)
work as on chat. Multipart forms are read by forms.py, with nothing shared with the
gateway's own form reader.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from . import faults, openai_files
from .forms import form
from .openai_api import _begin, _headers, _invalid, _send
from .state import STATE_KEY

# Fake audio: this many bytes per character of speech input; a transcription's audio is
# this many bytes per second.
SPEECH_BYTES_PER_CHAR = 64
AUDIO_BYTES_PER_SECOND = 4000


def register(app: web.Application) -> None:
    openai_files.register(app)
    for p in ("/v1", ""):
        app.router.add_post(f"{p}/completions", completions)
        app.router.add_post(f"{p}/images/generations", image_generations)
        app.router.add_post(f"{p}/images/edits", image_uploads)
        app.router.add_post(f"{p}/images/variations", image_uploads)
        app.router.add_post(f"{p}/audio/speech", speech)
        app.router.add_post(f"{p}/audio/transcriptions", transcriptions)
        app.router.add_post(f"{p}/audio/translations", transcriptions)


def _words(text: str) -> int:
    return max(1, len(text.split()))


# -- completions ----------------------------------------------------------------

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
    return await faults.stream_events(
        request, events, b, headers, final=b"[DONE]",
        wrong_shape=((None, faults.WRONG_SHAPE_COMPLETION_EVENT),))


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


async def image_uploads(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    formed = await form(request, t0)
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
    formed = await form(request, t0)
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
