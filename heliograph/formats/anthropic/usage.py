"""Anthropic's usage object ⇄ heliograph.costs.Usage.

Anthropic's `input_tokens` excludes cache reads and writes, OpenAI's `prompt_tokens`
includes them; the cache counts are kept apart so each is priced at its own rate.
"""

from __future__ import annotations

from typing import Any

from heliograph.costs import Usage, malformed_counts, token_count


def to_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    read = token_count(usage.get("cache_read_input_tokens"))
    write = token_count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    return Usage(prompt_tokens=token_count(usage.get("input_tokens")) + read + write,
                 completion_tokens=token_count(usage.get("output_tokens")),
                 cached_tokens=read, cache_write_tokens=write,
                 reasoning_tokens=token_count(thinking),
                 malformed=malformed_counts(usage.get("input_tokens"), usage.get("output_tokens"),
                                            usage.get("cache_read_input_tokens"),
                                            usage.get("cache_creation_input_tokens"), thinking))


def from_usage(u: Usage) -> dict[str, int]:
    return {"input_tokens": max(0, u.prompt_tokens - u.cached_tokens - u.cache_write_tokens),
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cached_tokens,
            "output_tokens": u.completion_tokens}
