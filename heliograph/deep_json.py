"""orjson encoding that never fails on depth.

orjson writes containers nested at most 254 levels deep, while it reads up to 1024: a
request body can parse and still not be writable, and a record at the limit can no
longer be wrapped in an API answer. Such values are still logged and served, with the
part nested too deep replaced by a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

MAX_DEPTH = 254
TOO_DEEP = f"[not logged: nested deeper than {MAX_DEPTH} levels]"


def dumps(value: Any, option: int = 0) -> bytes:
    try:
        return orjson.dumps(value, option=option)
    except TypeError:  # "Recursion limit reached"; the clipped copy is only made then
        return orjson.dumps(clipped(value, MAX_DEPTH), option=option)


def deeper_than(value: Any, levels: int) -> bool:
    """Whether value holds containers nested more than `levels` deep (iterative: the
    value may be nested deeper than Python's recursion limit)."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > levels:
            return True
        todo.extend((child, depth + 1) for child in children
                    if isinstance(child, (dict, list)))
    return False


def clipped(value: Any, levels: int) -> Any:
    """A copy of value whose containers more than `levels` deep are replaced by TOO_DEEP.
    Recurses at most `levels` deep, whatever the depth of value."""
    if isinstance(value, dict):
        if levels <= 0:
            return TOO_DEEP
        return {key: clipped(item, levels - 1) for key, item in value.items()}
    if isinstance(value, list):
        if levels <= 0:
            return TOO_DEEP
        return [clipped(item, levels - 1) for item in value]
    return value
