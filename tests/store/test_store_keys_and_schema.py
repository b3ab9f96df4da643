"""Conformance: gateway keys, migrations, and concurrent writers."""

import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from heliograph.analytics import open_analytics
from heliograph.analytics.filters import RequestFilter
from heliograph.store._schema import MIGRATIONS
from heliograph.store.base import KeyRow
from heliograph.store.sqlite import SQLiteStore

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_VERSIONS = [version for version, _description, _statements in MIGRATIONS]


def test_key_lifecycle(store):
    admin = store.create_key("hash-admin", "sk-hg-adm", "ops", "org1", admin=True)
    user = store.create_key("hash-user", "sk-hg-usr", "app", "org1", admin=False)
    other = store.create_key("hash-other", "sk-hg-oth", "theirs", "org2", admin=False)
    assert re.fullmatch(r"key_[0-9a-f]{12}", admin.id)
    assert len({admin.id, user.id, other.id}) == 3
    assert admin == KeyRow(id=admin.id, organization="org1", name="ops", prefix="sk-hg-adm",
                           admin=True, created_at=admin.created_at, revoked_at=None)

    assert store.find_key("hash-admin") == admin
    assert store.find_key("hash-user").admin is False
    assert store.find_key("unknown") is None
    assert [k.id for k in store.list_keys("org1")] == [admin.id, user.id]
    assert {k.id for k in store.list_keys()} == {admin.id, user.id, other.id}
    assert store.count_keys() == 3

    assert store.revoke_key(user.id, organization="org2") is False   # not theirs
    assert store.find_key("hash-user") is not None
    assert store.revoke_key(user.id, organization="org1") is True
    assert store.find_key("hash-user") is None
    assert store.count_keys() == 2
    (revoked,) = [k for k in store.list_keys("org1") if k.id == user.id]
    assert revoked.revoked_at is not None
    assert store.revoke_key(user.id) is False                        # already revoked
    assert store.list_keys("org1")[1].revoked_at == revoked.revoked_at
    assert store.revoke_key("key_000000000000") is False
    assert store.revoke_key(other.id) is True                        # no org: any key
    assert store.count_keys() == 1


def test_duplicate_key_hash_is_a_value_error(store):
    store.create_key("same", "sk-1", "one", "org1", admin=False)
    with pytest.raises(ValueError):
        store.create_key("same", "sk-2", "two", "org1", admin=False)
    assert store.count_keys() == 1


def test_migrate_twice_is_a_no_op(store, make_record, reader):
    store.insert_records([make_record("r1")])
    store.create_key("h", "sk", "k", "org1", admin=False)
    versions = store.schema_versions()
    assert versions == ALL_VERSIONS
    store.migrate()
    store.migrate()
    assert store.schema_versions() == versions
    assert reader.get_request("org1", "r1") is not None
    assert store.count_keys() == 1


def test_concurrent_migrate_applies_each_step_once(store_url):
    stores = [_unmigrated_store(store_url) for _ in range(4)]
    errors = []

    def run(s):
        try:
            s.migrate()
        except Exception as exc:  # collected: an exception in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert stores[0].schema_versions() == ALL_VERSIONS
    finally:
        for s in stores:
            s.close()


def _unmigrated_store(url):
    if url.startswith("sqlite"):
        return SQLiteStore(url)
    from heliograph.store.postgres import PostgresStore
    return PostgresStore(url)


def test_threads_share_one_store(store, make_record, reader):
    def write(worker):
        for batch in range(10):
            store.insert_records([make_record(f"t{worker}-{batch}-{i}") for i in range(20)])
            reader.list_requests("org1", RequestFilter(), limit=5)   # reads interleaved

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reader.metrics("org1", RequestFilter(), "model")["total"]["requests"] == 800


_WRITER = textwrap.dedent("""
    import sys
    from heliograph.records import RECORD_KEYS
    from heliograph.store.sqlite import SQLiteStore

    url, worker = sys.argv[1], sys.argv[2]
    store = SQLiteStore(url)
    store.migrate()   # both processes migrate the same fresh file at once
    for batch in range(40):
        records = []
        for i in range(50):
            rec = dict.fromkeys(RECORD_KEYS)
            rec.update(id=f"{worker}-{batch}-{i}", organization="org1",
                       created_at=f"2024-03-04T10:00:{batch:02d}.{i:06d}Z",
                       properties={"Worker": worker}, attempts=[], scores={},
                       cost_known=False, status=200)
            records.append(rec)
        # One batch both processes write: ids already stored are skipped, not doubled.
        records.append({**records[0], "id": f"shared-{batch}"})
        store.insert_records(records)
    store.close()
""")


def test_two_sqlite_writer_processes_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, url, worker], env=env,
                              stderr=subprocess.PIPE, text=True)
             for worker in ("w1", "w2")]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr

    store = SQLiteStore(url)
    reader = open_analytics(url)
    try:
        total = reader.metrics("org1", RequestFilter(), "model")["total"]["requests"]
        assert total == 2 * 40 * 50 + 40
        for worker in ("w1", "w2"):
            by_worker = reader.metrics("org1", RequestFilter(properties={"worker": worker}),
                                       "model")
            assert by_worker["total"]["requests"] >= 40 * 50
        assert store.schema_versions() == ALL_VERSIONS
    finally:
        reader.close()
        store.close()


def test_version_3_keeps_existing_records_and_keys_ids_by_organization(store_url,
                                                                       make_record):
    """A database at version 2 (ids unique across organizations) upgrades in place:
    its records and properties survive, and another organization may then reuse an id."""
    from heliograph.store._schema import MIGRATIONS, SCHEMA_MIGRATIONS_DDL
    from heliograph.store.sqlite import SQLiteStore

    old = SQLiteStore(store_url) if store_url.startswith("sqlite") else None
    if old is None:
        from heliograph.store.postgres import PostgresStore
        old = PostgresStore(store_url)
    with old.transaction(write=True) as cur:  # build version 2 by hand, as it was shipped
        old.execute(cur, SCHEMA_MIGRATIONS_DDL)
        for version, description, statements in MIGRATIONS[:2]:
            for statement in statements:
                old.execute(cur, statement.format(**old.dialect.types))
            old.execute(cur, "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (version, description, "2024-01-01T00:00:00Z"))
        old.execute(cur, "INSERT INTO requests (id, created_at, organization, cost_known,"
                         " properties_json) VALUES (?, ?, ?, ?, ?)",
                    ("shared-id", "2024-03-04T10:00:00.000000Z", "org1", False,
                     '{"team": "red"}'))
        old.execute(cur, "INSERT INTO request_properties VALUES (?, ?, ?, ?)",
                    ("shared-id", "org1", "team", "red"))
    old.migrate()
    assert old.schema_versions()[-1] >= 3
    reader = open_analytics(store_url)
    assert reader.get_request("org1", "shared-id")["properties"] == {"team": "red"}
    old.insert_records([make_record("shared-id", organization="org2",
                                    properties={"team": "blue"})])
    assert reader.get_request("org2", "shared-id")["properties"] == {"team": "blue"}
    assert old.request_id_used("org1", "shared-id") and \
        not old.request_id_used("org3", "shared-id")
    with old.transaction() as cur:
        rows = old.execute(cur, "SELECT organization, value FROM request_properties"
                                " ORDER BY organization").fetchall()
    assert [tuple(r) for r in rows] == [("org1", "red"), ("org2", "blue")]
    reader.close()
    old.close()
