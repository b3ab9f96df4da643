"""The Authenticator over a real SQLite store. A key's Principal is made once per cached
row and shared by all of that key's requests: a caller's own provider key (BYOK) must
stay with the request that sent it."""

import asyncio
import shutil

from heliograph.keys import display_prefix, generate_key, hash_key
from heliograph.proxy.auth import Authenticator
from heliograph.store import open_store


def _store_with_key(migrated_sqlite_file, tmp_path):
    path = tmp_path / "keys.db"
    shutil.copy(migrated_sqlite_file, path)
    store = open_store(f"sqlite:///{path}")
    key = generate_key()
    row = store.create_key(hash_key(key), display_prefix(key), "test", "org-a", admin=False)
    return store, key, row


def test_a_byok_credential_stays_with_its_request(migrated_sqlite_file, tmp_path):
    store, key, row = _store_with_key(migrated_sqlite_file, tmp_path)
    auth = Authenticator(store)

    async def calls():
        plain = await auth.authenticate({"authorization": f"Bearer {key}"})
        byok = await auth.authenticate({"helicone-auth": f"Bearer {key}",
                                        "authorization": "Bearer sk-callers-own"})
        after = await auth.authenticate({"authorization": f"Bearer {key}"})
        return plain, byok, after

    try:
        plain, byok, after = asyncio.run(calls())
    finally:
        store.close()
    assert byok.provider_authorization == "Bearer sk-callers-own"
    for principal in (plain, after):
        assert principal.provider_authorization is None
        assert (principal.key_id, principal.organization, principal.admin) == \
            (row.id, "org-a", False)
    assert (byok.key_id, byok.organization) == (row.id, "org-a")



class _CountingStore:
    """The real store's find_key, slowed so that requests overlap it, counted, and
    failing on demand (an unreachable database)."""

    def __init__(self, store):
        self.store = store
        self.outage_errors = store.outage_errors
        self.calls = 0
        self.running = self.most_at_once = 0
        self.failing = False

    def find_key(self, key_hash, wait_s=None):
        import sqlite3
        import time

        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)
            if self.failing:
                raise sqlite3.OperationalError("database is locked")
            return self.store.find_key(key_hash, wait_s)
        finally:
            self.running -= 1


def test_requests_that_find_a_key_stale_together_share_one_lookup(migrated_sqlite_file,
                                                                  tmp_path):
    """Under load every request in flight found a key's entry stale at once (each
    KEY_CACHE_TTL_S) and each looked it up on a thread of its own: a worker's executor
    grew to six threads, each with a SQLite connection and a malloc arena."""
    store, key, row = _store_with_key(migrated_sqlite_file, tmp_path)
    counting = _CountingStore(store)
    auth = Authenticator(counting)
    headers = {"authorization": f"Bearer {key}"}

    async def burst(n=20):
        return await asyncio.gather(*(auth.authenticate(headers) for _ in range(n)))

    async def calls():
        first = await burst()
        # The entry goes stale: the next burst looks it up again, once.
        auth._cache[key] = (0.0, auth._cache[key][1])
        second = await burst()
        return first, second

    try:
        first, second = asyncio.run(calls())
    finally:
        store.close()
    assert counting.calls == 2
    assert counting.most_at_once == 1   # one thread (and connection) at a time
    for principal in first + second:
        assert (principal.key_id, principal.organization) == (row.id, "org-a")
    assert not auth._finding


def test_a_shared_lookup_outlives_a_caller_that_goes_away(migrated_sqlite_file, tmp_path):
    store, key, row = _store_with_key(migrated_sqlite_file, tmp_path)
    counting = _CountingStore(store)
    auth = Authenticator(counting)
    headers = {"authorization": f"Bearer {key}"}

    async def calls():
        leaving = asyncio.ensure_future(auth.authenticate(headers))
        staying = asyncio.ensure_future(auth.authenticate(headers))
        await asyncio.sleep(0.01)
        leaving.cancel()
        return await staying, leaving

    try:
        principal, leaving = asyncio.run(calls())
    finally:
        store.close()
    assert leaving.cancelled()
    assert principal.key_id == row.id
    assert counting.calls == 1


def test_a_shared_lookup_that_fails_serves_every_waiter_as_an_outage(migrated_sqlite_file,
                                                                     tmp_path):
    """A failed shared lookup is an outage for each of its waiters: a key seen before is
    served on its last row, an unknown one gets a 503; the store was asked once."""
    from heliograph.errors import ServiceUnavailable

    store, key, row = _store_with_key(migrated_sqlite_file, tmp_path)
    counting = _CountingStore(store)
    auth = Authenticator(counting)
    headers = {"authorization": f"Bearer {key}"}

    async def calls():
        await auth.authenticate(headers)
        auth._cache[key] = (0.0, auth._cache[key][1])
        counting.failing = True
        stale = await asyncio.gather(*(auth.authenticate(headers) for _ in range(10)))
        auth._failing = False   # as after the probe found the store back, still failing
        unknown = await asyncio.gather(
            *(auth.authenticate({"authorization": "Bearer hg-unknown"}) for _ in range(5)),
            return_exceptions=True)
        return stale, unknown

    try:
        stale, unknown = asyncio.run(calls())
    finally:
        store.close()
    assert counting.calls == 3   # the first lookup, then one per burst
    assert all(p.key_id == row.id for p in stale)
    assert all(isinstance(e, ServiceUnavailable) for e in unknown)
    assert auth._failing
