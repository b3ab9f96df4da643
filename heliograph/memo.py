"""A bounded memo for what is derived from a provider's header names."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class HeaderNameMemo(dict, Generic[K, T]):
    """Header name (or an answer's names, in order) → make(key), each made once: a
    provider sends the same dozen names on every answer. Emptied when full, since the
    names are the provider's to choose."""

    LIMIT = 512

    def __init__(self, make: Callable[[K], T]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: K) -> T:
        if len(self) >= self.LIMIT:
            self.clear()
        made = self[key] = self._make(key)
        return made
