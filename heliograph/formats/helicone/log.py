"""Helicone's manual-logging body (POST /custom/v1/log and the provider-native
/oai/v1/log, /anthropic/v1/log, /googleapis/v1/log) → what the record needs.

The body, as Helicone's helper SDKs (`helicone-helpers` on PyPI, `@helicone/helpers` on
npm) and its cURL docs send it:

    {"providerRequest": {"url": "custom-model-nopath", "json": {...request...}, "meta": {}},
     "providerResponse": {"headers": {}, "status": 200, "json": {...} | "textBody": "..."},
     "timing": {"startTime": {"seconds", "milliseconds"}, "endTime": {...},
                "timeToFirstToken": ms},
     "provider": "openai"}                                  (optional; the npm SDK's)

A streamed answer comes as `textBody`: the chunks one per line (JSON lines, or SSE
`data:` lines), from which the model and the usage are read. A request whose `_type` is
`tool`, `vector_db` or `data` is a non-LLM span (a tool call, a vector search, any step of
an agent): logged with no model price, named `tool:<toolName>`, `vector_db:<operation>`
or `data:<name>` in the model field.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from heliograph.costs import Usage, usage_from_openai
from heliograph.errors import BadRequest
from heliograph.formats.gemini.usage import to_usage as gemini_usage

SPAN_TYPES = ("tool", "vector_db", "data")
# Helicone's status for a stream the caller cancelled (its SDKs send it): logged as
# nginx's 499, as the proxy logs a caller who left.
HELICONE_CANCELLED = -3
# Seconds since the epoch a timing may name: 2000-01-01 to 2100-01-01.
EARLIEST_TS, LATEST_TS = 946_684_800, 4_102_444_800
MAX_ERROR_CHARS = 2000
# A model in a Gemini URL: .../models/gemini-2.0-flash:generateContent
_GEMINI_URL_MODEL = re.compile(r"/models/([^/:?]+)")


@dataclass
class LoggedCall:
    request: Any                  # providerRequest.json, as sent
    response: Any                 # providerResponse.json, or its textBody
    status: int
    error: str | None
    start_ts: float               # epoch seconds
    latency_ms: float
    ttft_ms: float | None
    model: str | None             # asked for (the request's)
    model_used: str | None        # answered (the response's), when it says
    usage: Usage | None           # None: no usage reported
    span: str | None              # "tool" | "vector_db" | "data" for a non-LLM span
    provider: str | None          # the body's own `provider`, lower-cased
    meta: dict[str, str]          # providerRequest.meta: Helicone-* headers, by Helicone's rule


def parse_log(body: Any, now: float | None = None) -> LoggedCall:
    """A clear 400 for a body that is not Helicone's shape."""
    if not isinstance(body, dict):
        raise BadRequest("the log body must be a JSON object with providerRequest and "
                         "providerResponse", code="invalid_log")
    provider_request = _object(body, "providerRequest")
    provider_response = _object(body, "providerResponse")
    request = provider_request.get("json")
    if not isinstance(request, dict):
        raise BadRequest("providerRequest.json must be an object (the request as sent)",
                         code="invalid_log")
    text = provider_response.get("textBody")
    if text is not None and not isinstance(text, str):
        raise BadRequest("providerResponse.textBody must be a string", code="invalid_log")
    json_body = provider_response.get("json")
    if json_body is not None and not isinstance(json_body, dict):
        raise BadRequest("providerResponse.json must be an object", code="invalid_log")
    response: Any = text if text else json_body
    status, error = _status(provider_response.get("status", 200), text)
    start_ts, latency_ms, ttft_ms = _timing(body.get("timing"), now)
    span = request.get("_type") if request.get("_type") in SPAN_TYPES else None
    model, model_used, usage = None, None, None
    if span is None:
        model = _text(request.get("model")) or _url_model(provider_request.get("url"))
        model_used, usage = _answer(json_body, text)
    else:
        model = _span_name(span, request)
    provider = body.get("provider")
    meta = provider_request.get("meta")
    return LoggedCall(
        request=request, response=response, status=status, error=error,
        start_ts=start_ts, latency_ms=latency_ms, ttft_ms=ttft_ms, model=model,
        model_used=model_used, usage=usage, span=span,
        provider=provider.strip().lower() or None if isinstance(provider, str) else None,
        meta={str(k).lower(): v for k, v in meta.items() if isinstance(v, str)}
        if isinstance(meta, dict) else {})


def _object(body: dict, name: str) -> dict:
    value = body.get(name)
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object", code="invalid_log")
    return value


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _url_model(url: Any) -> str | None:
    found = _GEMINI_URL_MODEL.search(url) if isinstance(url, str) else None
    return found.group(1) if found else None


def _span_name(span: str, request: dict) -> str:
    detail = {"tool": "toolName", "vector_db": "operation", "data": "name"}[span]
    name = _text(request.get(detail))
    return f"{span}:{name}" if name else span


def _status(value: Any, text: str | None) -> tuple[int, str | None]:
    if value == HELICONE_CANCELLED:
        return 499, "cancelled by the caller before the answer finished"
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise BadRequest(f"providerResponse.status must be an HTTP status (100-599) or -3 "
                         f"(cancelled), got {value!r}"[:300], code="invalid_log")
    if value < 400:
        return value, None
    # The SDKs put the error (its stack) first, then a blank line, then the body.
    message = (text or "").split("\n\n", 1)[0].strip()
    return value, (message[:MAX_ERROR_CHARS] or f"the call failed with status {value}")


def _moment(value: Any, name: str) -> float:
    if not isinstance(value, dict):
        raise BadRequest(f"timing.{name} must be {{\"seconds\", \"milliseconds\"}}",
                         code="invalid_log")
    seconds, millis = value.get("seconds"), value.get("milliseconds", 0)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in (seconds, millis)):
        raise BadRequest(f"timing.{name} seconds and milliseconds must be numbers",
                         code="invalid_log")
    ts = seconds + millis / 1000
    if not EARLIEST_TS <= ts <= LATEST_TS:
        raise BadRequest(f"timing.{name} must be seconds since 1970 (between the years 2000 "
                         f"and 2100), got {seconds!r}", code="invalid_log")
    return ts


def _timing(timing: Any, now: float | None) -> tuple[float, float, float | None]:
    """(start, latency ms, time to first token ms); no timing means "just now"."""
    if timing is None:
        return (time.time() if now is None else now), 0.0, None
    if not isinstance(timing, dict):
        raise BadRequest("timing must be an object", code="invalid_log")
    start = _moment(timing.get("startTime"), "startTime")
    end = _moment(timing.get("endTime"), "endTime")
    if end < start:
        raise BadRequest("timing.endTime is before timing.startTime", code="invalid_log")
    ttft = timing.get("timeToFirstToken")
    if ttft is not None and (isinstance(ttft, bool) or not isinstance(ttft, (int, float))
                             or not math.isfinite(ttft) or ttft < 0):
        raise BadRequest("timing.timeToFirstToken must be a number of milliseconds",
                         code="invalid_log")
    return start, round((end - start) * 1000, 3), None if ttft is None else float(ttft)


def _answer(json_body: dict | None, text: str | None) -> tuple[str | None, Usage | None]:
    """(model the answer names, its usage) from a JSON answer or a streamed one."""
    if json_body:
        return _model_of(json_body), _usage_of(json_body)
    if not text:
        return None, None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            whole = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            return _model_of(whole), _usage_of(whole)
    return _from_chunks(stripped.splitlines())


def _model_of(answer: dict) -> str | None:
    message = answer.get("message")  # Anthropic's message_start event
    nested = message.get("model") if isinstance(message, dict) else None
    return _text(answer.get("model")) or _text(nested) or _text(answer.get("modelVersion"))


def _usage_of(answer: dict) -> Usage | None:
    if isinstance(answer.get("usageMetadata"), dict):
        return gemini_usage(answer["usageMetadata"])
    usage = answer.get("usage")
    return usage_from_openai(usage) if isinstance(usage, dict) and usage else None


def _from_chunks(lines: list[str]) -> tuple[str | None, Usage | None]:
    """A stream's model and usage. OpenAI sends usage in its last chunk; Anthropic splits
    it between message_start (input) and message_delta (output), merged here; Gemini
    repeats usageMetadata, the last one counting."""
    model: str | None = None
    usage: dict[str, Any] = {}
    gemini: dict | None = None
    for line in lines:
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line.startswith("{"):
            continue  # `event:` lines, `[DONE]`, blank lines
        try:
            chunk = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(chunk, dict):
            continue
        model = model or _model_of(chunk)
        message = chunk.get("message")
        if isinstance(message, dict) and isinstance(message.get("usage"), dict):
            usage.update(message["usage"])
        if isinstance(chunk.get("usage"), dict):
            usage.update({k: v for k, v in chunk["usage"].items() if v is not None})
        if isinstance(chunk.get("usageMetadata"), dict):
            gemini = chunk["usageMetadata"]
    if gemini is not None:
        return model, gemini_usage(gemini)
    return model, (usage_from_openai(usage) if usage else None)
