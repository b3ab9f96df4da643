"""A tool_use block's `input` (a JSON object) ⇄ an OpenAI tool call's `arguments` (a
JSON string), for answers, requests and streams alike."""

from __future__ import annotations

from typing import Any

import orjson


def arguments(block: dict) -> str:
    return orjson.dumps(block.get("input") or {}).decode()


def tool_input(arguments: Any) -> dict:
    try:
        parsed = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    # Arguments that are not a JSON object stay visible rather than silently emptied.
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}
