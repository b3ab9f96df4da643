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

