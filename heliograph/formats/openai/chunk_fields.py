"""Lenient reads of a provider's stream chunk (OpenAI's chat.completion.chunk; `member`,
`text`, `is_int` and `objects` for Anthropic's and Gemini's events and answers too), for
the code that relays, logs or translates what a provider sent. It is the provider's, not
the caller's: a member of the wrong type (a delta that is a string, content a number, a
tool call that is no object) cannot be refused with a 400 the way a bad request body is
(body_fields.py); the chunk is relayed as it came and the member reads as absent, so the
stream goes on, the answer is translated as far as it can be read, and both are logged.
"""

from __future__ import annotations

from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text(mapping: dict, name: str) -> str | None:
    """A string member, None when it is missing, empty or of another type."""
    value = mapping.get(name)
    return value if isinstance(value, str) and value else None


def _indexed(listed: Any) -> list[tuple[int, dict]]:
    """(index, item) of each item of a list that is an object with an integer `index`
    (0 when absent); anything else reads as no items."""
    out = []
    for item in objects(listed):
        index = item.get("index", 0)
        if is_int(index):
            out.append((index, item))
    return out


def objects(listed: Any) -> list[dict]:
    """The items of a list that are objects; anything else reads as no items."""
    if not isinstance(listed, list):
        return []
    return [item for item in listed if isinstance(item, dict)]


def choices(chunk: dict) -> list[tuple[int, dict]]:
    return _indexed(chunk.get("choices"))


def member(mapping: dict, name: str) -> dict:
    """An object member, {} when it is missing or of another type."""
    value = mapping.get(name)
    return value if isinstance(value, dict) else {}


def delta(choice: dict) -> dict:
    return member(choice, "delta")


def tool_calls(delta_: dict) -> list[tuple[int, dict, dict]]:
    """(index, call, its function) of a delta's tool calls; a function that is no object
    reads as {}."""
    out = []
    for index, call in _indexed(delta_.get("tool_calls")):
        out.append((index, call, member(call, "function")))
    return out


def usage(chunk: dict) -> dict | None:
    value = chunk.get("usage")
    return value if isinstance(value, dict) and value else None
