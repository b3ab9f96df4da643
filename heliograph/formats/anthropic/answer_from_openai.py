"""OpenAI answers as Anthropic ones, for Anthropic callers: the message, its usage, and
error objects (shared by the Anthropic front and its stream renderer)."""

from __future__ import annotations

from typing import Any

import orjson

from heliograph import costs
from heliograph.errors import GatewayError
from heliograph.formats.anthropic import usage as anthropic_usage_object
from heliograph.formats.anthropic.blocks import tool_input
from heliograph.formats.anthropic.tables import ERROR_STATUSES, ERROR_TYPES, STOP_REASONS
from heliograph.formats.openai import chunk_fields


def anthropic_usage(usage: Any) -> dict[str, int]:
    """Anthropic's usage object for an OpenAI one."""
    return anthropic_usage_object.from_usage(costs.usage_from_openai(usage))


def message_id(openai_id: Any) -> str:
    text = str(openai_id or "")
    return text if text.startswith("msg_") else "msg_" + text


def to_anthropic_message(completion: dict) -> dict:
    # The provider's answer: a member of the wrong type reads as absent (chunk_fields),
    # never an error of ours.
    choices = chunk_fields.choices(completion)
    choice = choices[0][1] if choices else {}
    message = chunk_fields.member(choice, "message")
    content: list[dict] = []
    if reasoning := chunk_fields.text(message, "reasoning_content"):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(t for p in text if isinstance(p, dict)
                       and isinstance(t := p.get("text"), str))
    if text and isinstance(text, str):
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = chunk_fields.member(call, "function")
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": tool_input(function.get("arguments"))})
    return {"id": message_id(completion.get("id")), "type": "message", "role": "assistant",
            "model": chunk_fields.text(completion, "model") or "", "content": content,
            "stop_reason": STOP_REASONS.get(chunk_fields.text(choice, "finish_reason"),
                                            "end_turn"),
            "stop_sequence": None, "usage": anthropic_usage(chunk_fields.usage(completion))}


def error_type(error: GatewayError) -> str:
    """Anthropic's error type for a gateway error: the provider's own when it is one of
    Anthropic's, else the one Anthropic uses for that status."""
    raw = getattr(error, "raw_body", None)
    if raw:
        try:
            kind = (orjson.loads(raw).get("error") or {}).get("type")
        except (orjson.JSONDecodeError, AttributeError):
            kind = None
        if isinstance(kind, str) and kind in ERROR_STATUSES:
            return kind
    return ERROR_TYPES.get(error.status) or ("api_error" if error.status >= 500
                                             else "invalid_request_error")


def error_object(error: GatewayError) -> dict:
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}
