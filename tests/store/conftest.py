"""Fixtures for the store conformance suite: every test runs once per store.

PostgreSQL tests need HELIOGRAPH_TEST_POSTGRES_URL; each test gets a fresh schema on that
database (selected through search_path in the URL), dropped afterwards.
"""

import os

import pytest
from servers import postgres_schema

from heliograph.analytics import open_analytics
from heliograph.records import RECORD_KEYS
from heliograph.store import open_store

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The URL of an empty database (nothing migrated) for one store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'heliograph.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set")
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def store(store_url):
    """A migrated store (open_store migrates)."""
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def reader(store, store_url):
    """The read side (heliograph.analytics) over the store's database."""
    opened = open_analytics(store_url)
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
