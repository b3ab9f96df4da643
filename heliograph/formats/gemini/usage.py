"""Gemini's usageMetadata → heliograph.costs.Usage.

`promptTokenCount` (+ `toolUsePromptTokenCount`) is every input token, cached ones
(`cachedContentTokenCount`) included, as OpenAI counts; `candidatesTokenCount` excludes
thinking, so completion = candidates + `thoughtsTokenCount`, and the thinking share is
reported as reasoning tokens (priced as output, Gemini's rule).
"""

from __future__ import annotations

from typing import Any

from heliograph.costs import Usage, token_count


def to_usage(meta: Any) -> Usage:
    if not isinstance(meta, dict):
        return Usage()
    thoughts = token_count(meta.get("thoughtsTokenCount"))
    return Usage(prompt_tokens=token_count(meta.get("promptTokenCount"))
                 + token_count(meta.get("toolUsePromptTokenCount")),
                 completion_tokens=token_count(meta.get("candidatesTokenCount")) + thoughts,
                 cached_tokens=token_count(meta.get("cachedContentTokenCount")),
                 reasoning_tokens=thoughts)
