"""OpenAI's usage object ⇄ heliograph.costs.Usage (the OpenAI convention: prompt_tokens
counts every input token, cache reads and writes included; completion_tokens every
output token, reasoning included)."""

from __future__ import annotations

from typing import Any

from heliograph.costs import Usage, usage_from_openai

to_usage = usage_from_openai    # lives in costs: the log prices every record through it


def from_usage(u: Usage) -> dict[str, Any]:
    """The usage object the translating formats put in their OpenAI answers."""
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens,
                                      "cache_write_tokens": u.cache_write_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}
