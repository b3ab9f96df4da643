"""A provider's answer headers, read once per answer: the lower-cased dict every step reads,
and what the caller and the record get from it (the relayed pairs, the rate limits).

Every answer has ~13 headers, and three walks over them (lower-casing, picking the ones
the caller gets, picking the rate limits) cost ~45 k instructions a request, ~1.2 k an
item in a comprehension. A provider sends the same names in the same order on every
answer, so what each walk decides is decided once per set of names (_Head) and an answer
only has its values put in place, in C (zip, itemgetter)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from heliograph.memo import HeaderNameMemo

# The provider's headers the caller gets too. `request-id`: Anthropic's id for the call,
# which its support asks for.
RELAYED_PREFIXES = ("x-ratelimit-", "retry-after", "openai-", "x-request-id", "anthropic-",
                    "request-id")

# The rate-limit headers the record keeps, by the record's name for each.
RATELIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "limit_requests",
    "x-ratelimit-remaining-requests": "remaining_requests",
    "x-ratelimit-reset-requests": "reset_requests",
    "x-ratelimit-limit-tokens": "limit_tokens",
    "x-ratelimit-remaining-tokens": "remaining_tokens",
    "x-ratelimit-reset-tokens": "reset_tokens",
    "retry-after": "retry_after",
}

Pairs = Sequence[tuple[bytes, bytes]]


def _tuple_getter(keys: Sequence[Any]) -> Callable[[Any], tuple] | None:
    """itemgetter(*keys), always giving a tuple (itemgetter of one key gives the item
    itself: asked twice, its tuple is cut to one by the zip it is read through); None
    when there are no keys."""
    if not keys:
        return None
    return itemgetter(*keys) if len(keys) > 1 else itemgetter(keys[0], keys[0])


class _Head:
    """What an answer whose headers have these names, in this order, gives: worked out
    once per set of names, as the dict comprehensions that did it on every answer did.

    - lower: each name lower-cased (the dict keeps a repeated name once: its first place,
      its last value);
    - the relayed pairs: each distinct name starting with RELAYED_PREFIXES, in the dict's
      order, as its lower-case bytes and the raw bytes of its last value;
    - the rate limits: RATELIMIT_HEADERS' names present, in that order."""

    __slots__ = ("lower", "relayed_names", "relayed_values", "ratelimit_keys",
                 "ratelimit_values")

    def __init__(self, names: tuple[str, ...]) -> None:
        lower = self.lower = tuple(name.lower() for name in names)
        last = {name: i for i, name in enumerate(lower)}   # dict order: first places
        relayed = [name for name in last if name.startswith(RELAYED_PREFIXES)]
        self.relayed_names = tuple(name.encode("latin-1") for name in relayed)
        self.relayed_values = _tuple_getter([last[name] for name in relayed])
        present = [name for name in RATELIMIT_HEADERS if name in last]
        self.ratelimit_keys = tuple(RATELIMIT_HEADERS[name] for name in present)
        self.ratelimit_values = _tuple_getter(present)


_heads: HeaderNameMemo[tuple[str, ...], _Head] = HeaderNameMemo(_Head)

_VALUE = itemgetter(1)


class AnswerHeaders(dict):
    """A provider's answer headers: to every reader a dict of lower-case names (the last
    value of a repeated name), carrying besides what relayed_raw and ratelimit_from give
    for it, worked out when it was read. Never changed after that (an adapter that adds
    or replaces a header makes a dict of its own, as Gemini's and Anthropic's do): a
    change would not reach those two, so it is refused."""

    __slots__ = ("relayed", "ratelimit")

    relayed: Pairs
    ratelimit: dict[str, str] | None

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("a provider's answer headers are read-only: copy them to change")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


def answer_headers(headers: Any, raw: Sequence[tuple[bytes, bytes]]) -> AnswerHeaders:
    """The AnswerHeaders of an aiohttp response: its headers (a CIMultiDictProxy, names as
    aiohttp reads them, values decoded) and raw_headers (the same headers, in the same
    order, as the bytes that came). The relayed values are those bytes, sent on as the
    provider sent them."""
    # aiohttp's names, the same objects on every answer (cheap to hash). Iterating a
    # multidict gives each name once (multidict 7; earlier, every header's): a repeated
    # name (two set-cookie, say) needs every header's name, for the values' places.
    names = tuple(headers)
    if len(names) != len(headers):
        names = tuple([name for name, _ in headers.items()])
    head = _heads[names]
    out = AnswerHeaders(zip(head.lower, headers.values()))
    relayed = head.relayed_values
    if relayed is None:
        out.relayed = []
    elif len(raw) == len(names):   # as aiohttp reads them: always
        out.relayed = list(zip(head.relayed_names, map(_VALUE, relayed(raw))))
    else:
        out.relayed = _relayed(out)
    limits = head.ratelimit_values
    out.ratelimit = dict(zip(head.ratelimit_keys, limits(out))) if limits is not None else None
    return out


def _relayed_name(name: str) -> bytes | None:
    """A header name's bytes when it is relayed, else None."""
    return name.encode("latin-1") if name.startswith(RELAYED_PREFIXES) else None


# Each name matched against RELAYED_PREFIXES and encoded once, not per answer.
_relayed_names: HeaderNameMemo[str, bytes | None] = HeaderNameMemo(_relayed_name)


def header_bytes(value: str) -> bytes:
    """A header value as the bytes it came as: aiohttp decodes a value as UTF-8, keeping
    any other byte as a surrogate escape. A value of a dict an adapter made (Anthropic's,
    Gemini's) goes back the same way, so no character fails the answer."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:     # a lone surrogate no decoding could have made
        return value.encode("utf-8", "replace")


def _relayed(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    names = _relayed_names
    return [(name, header_bytes(v)) for k, v in headers.items()
            if (name := names[k]) is not None]


def relayed_raw(headers: dict[str, str]) -> Pairs:
    """The provider's headers the caller gets, as the ASGI answer's raw pairs: worked out
    already for a provider's own answer (AnswerHeaders: the list it keeps, to be read,
    not changed), else in one pass."""
    if type(headers) is AnswerHeaders:
        return headers.relayed
    return _relayed(headers)


def ratelimit_from(headers: dict[str, str]) -> dict[str, str] | None:
    """The rate limits the record keeps, None when the answer has none."""
    if type(headers) is AnswerHeaders:
        return headers.ratelimit
    found = {key: headers[name] for name, key in RATELIMIT_HEADERS.items() if name in headers}
    return found or None
