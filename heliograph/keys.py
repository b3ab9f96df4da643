"""Gateway keys: generated here, stored only as a SHA-256 hash, shown once.

SHA-256 rather than a slow password hash: the keys are 256-bit random strings, so a fast
hash is as safe and keeps authentication off the request path's critical budget.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

log = logging.getLogger("heliograph.keys")

KEY_PREFIX = "sk-hg-"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# A generated key's stored prefix: "sk-hg-" and 6 random characters.
PREFIX_LENGTH = len(KEY_PREFIX) + 6


def display_prefix(key: str) -> str:
    """What is stored (and listed) to recognise a key: never more than a third of it, so a
    short HELIOGRAPH_ADMIN_KEY is not kept or shown whole."""
    return key[: min(PREFIX_LENGTH, len(key) // 3)]


def shown_prefix(stored: str) -> str:
    """A stored prefix as listed. Rows written before display_prefix was capped may hold
    a short custom key whole, so anything but a generated key's prefix is cut to 4."""
    generated = stored.startswith(KEY_PREFIX) and len(stored) == PREFIX_LENGTH
    return (stored if generated else stored[:4]) + "…"


def ensure_admin_key(store, explicit_key: str = "") -> str | None:
    """Make sure an admin key exists.

    With `explicit_key` (HELIOGRAPH_ADMIN_KEY) that exact key is made to exist and None is
    returned. Otherwise, on a database with no live key, a new admin key is created and
    returned so the caller can print it once.
    """
    if explicit_key:
        if store.find_key(hash_key(explicit_key)) is None:
            try:
                store.create_key(hash_key(explicit_key), display_prefix(explicit_key),
                                 "admin (HELIOGRAPH_ADMIN_KEY)", "default", True)
            except ValueError:
                # The key exists but was revoked: a revocation is not undone by a restart.
                log.warning("HELIOGRAPH_ADMIN_KEY names a revoked key; it stays revoked")
        return None
    if store.count_keys() > 0:
        return None
    key = generate_key()
    store.create_key(hash_key(key), display_prefix(key), "admin", "default", True)
    return key
