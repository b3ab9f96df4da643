"""A bounded memo for what is derived from a provider's header names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class HeaderNameMemo(dict, Generic[T]):
    """Header name → make(name), each made once: a provider sends the same dozen names on
    every answer. Emptied when full, since the names are the provider's to choose."""

    LIMIT = 512

    def __init__(self, make: Callable[[str], T]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, name: str) -> T:
        if len(self) >= self.LIMIT:
            self.clear()
        made = self[name] = self._make(name)
        return made
