"""Pieces of content blocks ⇄ their OpenAI counterparts, for answers, requests and
streams alike: a tool_use block's `input` (a JSON object) ⇄ a tool call's `arguments`
(a JSON string); a base64 `source` ⇄ a data URL."""

from __future__ import annotations

from typing import Any

import orjson


def tool_use(block: dict) -> tuple[str, str] | None:
    """(name, id) of a provider's tool_use block; None when either is no string, as no
    caller could run or answer such a call (the block is left out of the answer)."""
    name, id_ = block.get("name"), block.get("id")
    if isinstance(name, str) and name and isinstance(id_, str):
        return name, id_
    return None


def arguments(block: dict) -> str:
    return orjson.dumps(block.get("input") or {}).decode()


def tool_input(arguments: Any) -> dict:
    try:
        parsed = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    # Arguments that are not a JSON object stay visible rather than silently emptied.
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def base64_source(inline: tuple[str, str]) -> dict:
    """The source of an image or document block for (media type, data) of a data URL."""
    return {"type": "base64", "media_type": inline[0], "data": inline[1]}


def data_url(source: dict) -> str:
    return f"data:{source.get('media_type')};base64,{source.get('data')}"
