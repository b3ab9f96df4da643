"""Anthropic's answers in OpenAI's shapes: a message as a chat.completion, errors as
OpenAI error bodies, rate-limit headers under OpenAI's names, the model listing.
(The stream's events: `stream_to_openai`.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

from heliograph.formats.anthropic import usage as anthropic_usage
from heliograph.formats.anthropic.blocks import arguments, tool_use
from heliograph.formats.anthropic.tables import FINISH_REASONS
from heliograph.formats.openai import chat
from heliograph.formats.openai import usage as openai_usage_object
from heliograph.formats.openai.chunk_fields import member, objects, text

# anthropic-ratelimit-<kind>-<field> → the OpenAI header names the gateway records.
_RATELIMIT_NAMES = {
    "anthropic-ratelimit-requests-limit": "x-ratelimit-limit-requests",
    "anthropic-ratelimit-requests-remaining": "x-ratelimit-remaining-requests",
    "anthropic-ratelimit-requests-reset": "x-ratelimit-reset-requests",
    "anthropic-ratelimit-tokens-limit": "x-ratelimit-limit-tokens",
    "anthropic-ratelimit-tokens-remaining": "x-ratelimit-remaining-tokens",
    "anthropic-ratelimit-tokens-reset": "x-ratelimit-reset-tokens",
}


def openai_usage(usage: Any) -> dict[str, Any]:
    return openai_usage_object.from_usage(anthropic_usage.to_usage(usage))


def completion(message: dict, json_tool: str | None) -> dict[str, Any]:
    # The provider's message is read leniently (chunk_fields): a member of the wrong type
    # reads as absent, so a block that is no object or whose text is no string adds
    # nothing, and the caller gets what could be read rather than a gateway error.
    texts, calls, thinking = [], [], []
    for block in objects(message.get("content")):
        kind = block.get("type")
        if kind == "text":
            texts.append(text(block, "text") or "")
        elif kind == "tool_use" and (call := tool_use(block)) is not None:
            name, id_ = call
            if name == json_tool:
                texts.append(arguments(block))  # JSON mode: the answer is the tool's input
            else:
                calls.append(chat.tool_call(id_, name, arguments(block)))
        elif kind == "thinking":
            thinking.append(text(block, "thinking") or "")
    finish = FINISH_REASONS.get(text(message, "stop_reason"), "stop")
    if finish == "tool_calls" and not calls:
        finish = "stop"
    choice = chat.choice(0, "".join(texts) if texts else None, calls, finish,
                         "".join(thinking) or None)
    return chat.completion(text(message, "id") or "", text(message, "model") or "", [choice],
                           openai_usage(message.get("usage")))


def error_body(status: int, body: bytes, provider: str) -> bytes:
    parsed = chat.json_or_none(body)
    error = member(parsed, "error") if isinstance(parsed, dict) else {}
    message = text(error, "message")
    if message:
        kind = text(error, "type") or "api_error"
        return chat.error_body(message, kind, kind)
    return chat.provider_error_body(status, body, provider)


def _seconds_until(timestamp: str) -> str:
    """Anthropic gives reset times as RFC 3339 instants, OpenAI as durations."""
    try:
        at = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    left = (at - dt.datetime.now(dt.UTC)).total_seconds()
    return f"{max(0.0, round(left, 3)):g}s"


def openai_ratelimit_headers(headers: dict[str, str]) -> dict[str, str]:
    out = dict(headers)
    for name, openai_name in _RATELIMIT_NAMES.items():
        if name in headers:
            value = headers[name]
            out[openai_name] = _seconds_until(value) if name.endswith("-reset") else value
    return out


def _epoch(timestamp: Any) -> int:
    """An RFC 3339 instant (Anthropic's created_at) as OpenAI's epoch seconds; 0 if none."""
    try:
        return int(dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
                   .timestamp())
    except ValueError:
        return 0


def listed_models(entries: list[dict]) -> list[tuple[str, int]]:
    """(model id, created epoch seconds) of the entries of Anthropic's model listing."""
    return [(m["id"], _epoch(m.get("created_at"))) for m in entries
            if isinstance(m.get("id"), str)]
