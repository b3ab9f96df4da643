"""The response cache (Helicone-Cache-*), over SharedState.

Key: sha256 of the canonical JSON of (scope, path, Helicone-Cache-Seed, bucket
index, request body without the Helicone-Cache-Ignore-Keys top-level keys). The scope is
the organization, and by default the gateway key (and a caller's own provider key) within
it: proxy/cached.py cache_scope. Canonical =
keys sorted at every depth, no whitespace (orjson), so key order and formatting never
matter while any difference in model, messages or a parameter (temperature, stream, …)
does. Streamed and non-streamed requests differ by `stream`, so each replays as it came.

Buckets (Helicone-Cache-Bucket-Max-Size N): the same request has N slots. Until all N are
filled a lookup is a miss and the answer is stored in the first free slot; once they are,
a lookup returns one of them at random (CachedAnswer.bucket_index says which).

Only 2xx answers are stored, by a background task the request path never waits for.

Entries are immutable: a slot is only ever written while empty (or expired), so an entry
read once stays valid, unchanged, until its expiry, which travels inside the entry. Each
process therefore keeps the entries it recently read or wrote (RecentEntries, bounded by
bytes) and answers a repeated hit from memory, without a round trip to the shared store.
Misses always ask the store: another replica may have filled the slot meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import orjson

from heliograph.proxy.background import BackgroundTasks

log = logging.getLogger("heliograph.cache")

# Bump when the key or the stored layout changes: old entries then simply miss.
FORMAT_VERSION = 2

# What one process keeps of recently used entries (see RecentEntries).
RECENT_MAX_BYTES = 32 * 1024 * 1024


@dataclass
class CachedAnswer:
    status: int
    headers: dict[str, str]
    body: bytes | None = None            # a non-streamed JSON answer (OpenAI format)
    events: list[bytes] | None = None    # a stream: chunk JSON payloads in order, no [DONE]
    model: str | None = None
    provider: str | None = None
    usage: dict | None = None
    bucket_index: int = 0
    # The id of the logged request whose answer this is: a hit's record names it
    # (cache_reference_id, as Helicone's), so the Cache page links to the fill.
    request_id: str | None = field(default=None, compare=False)
    # Epoch seconds; set when stored. Not part of equality: it says when, not what.
    expires_at: float | None = field(default=None, compare=False)

    def encode(self) -> bytes:
        b64 = base64.b64encode
        return orjson.dumps({
            "v": FORMAT_VERSION, "expires_at": self.expires_at,
            "status": self.status, "headers": self.headers,
            "body": None if self.body is None else b64(self.body).decode(),
            "events": None if self.events is None else [b64(e).decode() for e in self.events],
            "model": self.model, "provider": self.provider, "usage": self.usage,
            "request_id": self.request_id,
        })

    @classmethod
    def decode(cls, raw: bytes, bucket_index: int = 0) -> CachedAnswer:
        doc = orjson.loads(raw)
        if doc.get("v") != FORMAT_VERSION:
            raise ValueError(f"cache entry format {doc.get('v')!r}")
        b64 = base64.b64decode
        return cls(status=int(doc["status"]), headers=dict(doc["headers"]),
                   body=None if doc["body"] is None else b64(doc["body"]),
                   events=None if doc["events"] is None else [b64(e) for e in doc["events"]],
                   model=doc.get("model"), provider=doc.get("provider"),
                   usage=doc.get("usage"), bucket_index=bucket_index,
                   request_id=doc.get("request_id"),
                   expires_at=None if doc.get("expires_at") is None
                   else float(doc["expires_at"]))

    def size(self) -> int:
        """Roughly the bytes this answer holds (for RecentEntries' budget)."""
        return len(self.body or b"") + sum(len(e) for e in self.events or ()) + 512


class RecentEntries:
    """An LRU of entries this process read or wrote, by key, bounded by total size.

    Sound because entries never change, only expire (module docstring); an entry whose
    expiry is unknown is not kept."""

    def __init__(self, max_bytes: int = RECENT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._bytes = 0

    def get(self, key: str, now: float) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        # put() keeps no entry whose expiry is unknown; None reads as expired all the same.
        if entry.expires_at is None or entry.expires_at <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: CachedAnswer) -> None:
        size = entry.size()
        if entry.expires_at is None or size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size()

    def __len__(self) -> int:
        return len(self._entries)


def canonical_body(body: dict, ignore_keys: list[str] | tuple[str, ...] = ()) -> dict:
    if not ignore_keys:
        return body
    ignored = set(ignore_keys)
    return {k: v for k, v in body.items() if k not in ignored}


def cache_key(organization: str, path: str, body: dict, options, bucket: int) -> str:
    material = orjson.dumps(
        [FORMAT_VERSION, organization, path, options.cache_seed, bucket,
         canonical_body(body, options.cache_ignore_keys)],
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(material).hexdigest()


def entry_id(keys: list[str]) -> str:
    """What a log record says about the entry it hit or missed: the first 16 hex digits
    of its first bucket's key (a sha256 already: no body can be read back from it). A
    request's buckets are one entry, as they answer the same request."""
    return keys[0][:16]


class ResponseCache:
    def __init__(self, state) -> None:
        self.state = state
        self.recent = RecentEntries()
        self._background = BackgroundTasks(log)  # stores after the answer

    cache_key = staticmethod(cache_key)

    def keys(self, organization: str, path: str, body: dict, options) -> list[str]:
        return [cache_key(organization, path, body, options, i)
                for i in range(max(1, options.cache_bucket_max))]

    async def lookup(self, organization: str, path: str, body: dict, options
                     ) -> CachedAnswer | None:
        """A stored answer, or None (miss: absent, expired, not every bucket filled yet,
        unreadable, or the store unreachable)."""
        return await self.lookup_keys(self.keys(organization, path, body, options))

    async def lookup_keys(self, keys: list[str]) -> CachedAnswer | None:
        """lookup() with the request's keys already computed (self.keys)."""
        now = time.time()
        known = [self.recent.get(key, now) for key in keys]
        if all(known):
            return random.choice(known)
        index = 0
        if len(keys) > 1:
            if not all(await self.state.cache_filled(keys)):
                return None
            index = random.randrange(len(keys))
        if known[index] is not None:
            return known[index]
        raw = await self.state.cache_get(keys[index])
        if raw is None:
            return None  # e.g. expired between the two calls
        try:
            hit = CachedAnswer.decode(raw, index)
        except (ValueError, KeyError, TypeError) as exc:  # orjson errors are ValueErrors
            log.warning("unreadable cache entry %s… ignored: %s", keys[index][:12], exc)
            return None
        self.recent.put(keys[index], hit)
        return hit

    async def store(self, organization: str, path: str, body: dict, options,
                    answer: CachedAnswer) -> int | None:
        """Store a successful answer in the first free bucket; the index used, or None
        when not stored (not 2xx, nothing to replay, TTL 0, all buckets full, store
        unreachable)."""
        return await self._store(self.keys(organization, path, body, options),
                                 options.cache_ttl_s, answer)

    async def _store(self, keys: list[str], ttl_s: float, answer: CachedAnswer
                     ) -> int | None:
        if not 200 <= answer.status < 300 or ttl_s <= 0:
            return None
        if answer.body is None and answer.events is None:
            return None
        # The store's clock and ours agree closely enough: both expiries are set from now.
        answer = replace(answer, expires_at=time.time() + ttl_s)
        value = answer.encode()
        filled = await self.state.cache_filled(keys) if len(keys) > 1 else [False]
        for index, key in enumerate(keys):
            # only_if_absent: two misses racing for one slot do not overwrite each other;
            # the loser moves on to the next slot.
            if not filled[index] and await self.state.cache_set(key, value, ttl_s,
                                                                only_if_absent=True):
                self.recent.put(key, replace(answer, bucket_index=index))
                return index
        return None

    def store_later(self, organization: str, path: str, body: dict, options,
                    answer: CachedAnswer) -> None:
        """store() in a background task; errors are logged, never raised."""
        # Keys now: the caller may reuse or mutate `body` once this returns.
        keys = self.keys(organization, path, body, options)
        self._background.start(self._store(keys, options.cache_ttl_s, answer),
                               "storing a cache entry")

    async def drain(self) -> None:
        """Wait for background stores (shutdown, tests)."""
        await self._background.drain()
