"""Typed reads of request-body fields for the code that translates bodies between API
formats. A field of the wrong type is the caller's 400 naming the field, never an
AttributeError or TypeError of ours (a 500). Absent (or null) fields read as empty.
"""

from __future__ import annotations

from typing import Any

from heliograph.errors import BadRequest


def _wrong(where: str, expected: str, value: Any) -> BadRequest:
    return BadRequest(f"{where}: must be {expected}, got {type(value).__name__}",
                      code="invalid_request")


def object_field(body: dict, name: str, where: str = "") -> dict:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong(where + name, "an object", value)
    return value


def list_field(body: dict, name: str, where: str = "") -> list:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(where + name, "an array", value)
    return value


def text(value: Any, where: str) -> str:
    """A text field's value ("" when absent)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong(where, "a string", value)
    return value


def strings(body: dict, name: str, where: str = "") -> list[str]:
    """A field that is one string or an array of strings (OpenAI's `stop`), as a list."""
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(where + name, "a string or an array of strings", value)
    return value
