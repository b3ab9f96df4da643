"""The Anthropic Messages API's vocabulary next to OpenAI's, each table once: the
translations in both directions read (or invert) these."""

from __future__ import annotations

# Keys typed `str | None`: lookups take a field as read from a body, maybe missing.

# Anthropic stop_reason → OpenAI finish_reason.
FINISH_REASONS: dict[str | None, str] = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter",
                  "model_context_window_exceeded": "length"}
# OpenAI finish_reason → Anthropic stop_reason (several Anthropic reasons share an OpenAI
# one, so this is not FINISH_REASONS inverted).
STOP_REASONS: dict[str | None, str] = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}

# Anthropic's error types and the HTTP status each comes with. Mid-stream error events
# carry only the type: this is the status it implies.
ERROR_STATUSES: dict[str | None, int] = {"invalid_request_error": 400, "authentication_error": 401,
                  "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                  "rate_limit_error": 429, "api_error": 500, "timeout_error": 504,
                  "overloaded_error": 529}
# The other way, for gateway errors shown to an Anthropic caller (503 is overloaded too).
ERROR_TYPES = {status: kind for kind, status in ERROR_STATUSES.items() if kind} | {
    503: "overloaded_error"}

# OpenAI tool_choice string → Anthropic tool_choice type.
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}
TOOL_CHOICES_TO_OPENAI: dict[str | None, str] = {kind: choice for choice, kind in TOOL_CHOICES.items()}
