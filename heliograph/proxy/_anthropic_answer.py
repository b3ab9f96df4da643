"""OpenAI answers as Anthropic ones: the message, its usage, and error objects (shared
by the Anthropic front and its stream renderer)."""

from __future__ import annotations

from typing import Any

import orjson

from heliograph import costs
from heliograph.errors import GatewayError

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error",
               529: "overloaded_error"}
KNOWN_ERROR_TYPES = frozenset(ERROR_TYPES.values()) | {"api_error"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


def anthropic_usage(usage: Any) -> dict[str, int]:
    u = costs.usage_from_openai(usage)
    return {"input_tokens": max(0, u.prompt_tokens - u.cached_tokens - u.cache_write_tokens),
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cached_tokens,
            "output_tokens": u.completion_tokens}


def tool_input(arguments: Any) -> dict:
    try:
        parsed = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    # Arguments that are not a JSON object stay visible rather than silently emptied.
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def message_id(openai_id: Any) -> str:
    text = str(openai_id or "")
    return text if text.startswith("msg_") else "msg_" + text


def to_anthropic_message(completion: dict) -> dict:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict] = []
    if message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"],
                        "signature": ""})
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": tool_input(function.get("arguments"))})
    return {"id": message_id(completion.get("id")), "type": "message", "role": "assistant",
            "model": completion.get("model") or "", "content": content,
            "stop_reason": STOP_REASONS.get(choice.get("finish_reason"), "end_turn"),
            "stop_sequence": None, "usage": anthropic_usage(completion.get("usage"))}


def error_type(error: GatewayError) -> str:
    """Anthropic's error type for a gateway error: the provider's own when it is one of
    Anthropic's, else the one Anthropic uses for that status."""
    raw = getattr(error, "raw_body", None)
    if raw:
        try:
            kind = (orjson.loads(raw).get("error") or {}).get("type")
        except (orjson.JSONDecodeError, AttributeError):
            kind = None
        if kind in KNOWN_ERROR_TYPES:
            return kind
    return ERROR_TYPES.get(error.status) or ("api_error" if error.status >= 500
                                             else "invalid_request_error")


def error_object(error: GatewayError) -> dict:
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}
