"""Fixtures for the store conformance suite: every test runs once per store.

PostgreSQL tests need HELIOGRAPH_TEST_POSTGRES_URL. A test that asks for an empty database
(`store_url`) gets a fresh schema on it (selected through search_path in the URL), dropped
afterwards; a test that wants a migrated store gets a copy of a SQLite file migrated once per
session, or shares one PostgreSQL schema migrated once per session, its tables emptied
before each test (both far cheaper than migrating anew).
"""

import os

import pytest
from servers import copy_of, empty_postgres_tables, postgres_schema

from heliograph.analytics import open_analytics
from heliograph.records import RECORD_KEYS
from heliograph.store import open_store

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request):
    """Which store a test runs on: every test that takes a database runs once per store."""
    if request.param == "postgres" and not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set")
    return request.param


@pytest.fixture
def store_url(store_kind, tmp_path):
    """The URL of an empty database (nothing migrated) for one store."""
    if store_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'heliograph.db'}"
        return
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def migrated_url(store_kind, tmp_path, request):
    """The URL of a migrated database holding no records, keys or state."""
    if store_kind == "sqlite":
        return copy_of(request.getfixturevalue("migrated_sqlite_file"),
                       tmp_path / "heliograph.db")
    url = request.getfixturevalue("migrated_postgres_url")
    empty_postgres_tables(url)
    return url


@pytest.fixture
def store(migrated_url):
    """A migrated store (open_store migrates)."""
    opened = open_store(migrated_url)
    yield opened
    opened.close()


@pytest.fixture
def reader(store, migrated_url):
    """The read side (heliograph.analytics) over the store's database."""
    opened = open_analytics(migrated_url)
    yield opened
    opened.close()


@pytest.fixture
def raw_reader(migrated_url, store):
    """The read side with the rollups off: every answer from raw rows, to compare."""
    opened = open_analytics(migrated_url)
    opened.use_rollups = False
    yield opened
    opened.close()


def make_record(request_id: str, at: str = "2024-03-04T10:00:00.000000Z",
                organization: str = "org1", **fields) -> dict:
    """A record with every RECORD_KEYS key: new_record's defaults plus the given fields."""
    rec = dict.fromkeys(RECORD_KEYS)
    rec.update(id=request_id, created_at=at, organization=organization,
               path="/v1/chat/completions", status=200, properties={}, attempts=[],
               scores={}, cost_known=False)
    unknown = set(fields) - set(RECORD_KEYS)
    assert not unknown, f"not record keys: {unknown}"
    rec.update(fields)
    return rec


@pytest.fixture(name="make_record")
def make_record_fixture():
    return make_record
