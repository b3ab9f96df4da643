"""PostgreSQL: the rollup tables the writer updates in place (every one but
rollup_sessions, whose listing index walks last_at) have no index on a column an update
changes, and room left in their pages, so an update of a group can be a HOT update (no
new index entry). Migration 15 made most of them so, migration 17 rollup_users."""

import os

import pytest

from heliograph.analytics.filters import RequestFilter
from heliograph.store import _rollups
from heliograph.store._schema_v15 import HOT_ROLLUPS, ROLLUP_FILLFACTOR

pytestmark = pytest.mark.skipif(not os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL"),
                                reason="HELIOGRAPH_TEST_POSTGRES_URL not set")

# Updated by the writer, yet indexed by a column its updates change (the listing of
# sessions, newest activity first, is keyset-paged on that index).
_NOT_HOT = {"rollup_sessions"}
_KEYS = {table.name: set(table.keys) for table in _rollups.TABLES}


@pytest.fixture
def store_kind():
    return "postgres"


def _indexed_columns(store, table: str) -> set[str]:
    with store.transaction() as cur:
        rows = store.execute(
            cur, "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                 " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                 " WHERE i.indrelid = CAST(? AS regclass)", (table,)).fetchall()
    return {name for (name,) in rows}


def _fillfactor(store, table: str) -> list | None:
    with store.transaction() as cur:
        return store.execute(cur, "SELECT reloptions FROM pg_class"
                                  " WHERE oid = CAST(? AS regclass)", (table,)).fetchone()[0]


@pytest.mark.parametrize("table", sorted(set(_KEYS) - _NOT_HOT))
def test_a_rollup_updated_in_place_is_indexed_only_by_its_key(store, table):
    assert _indexed_columns(store, table) <= _KEYS[table], table
    assert _fillfactor(store, table) == [f"fillfactor={ROLLUP_FILLFACTOR}"]


def test_every_rollup_but_sessions_has_room_for_hot_updates():
    assert set(_KEYS) - _NOT_HOT <= set(HOT_ROLLUPS) | {"rollup_users"}


def test_users_most_used_first_still_page_without_the_counter_index(store, reader,
                                                                    make_record):
    # The index migration 17 drops never served this listing: the users' sums are
    # sorted in an outer query. Pages stay complete and in order without it.
    records = [make_record(f"r{i}", at=f"2031-05-0{1 + i % 3}T10:00:0{i % 10}Z",
                           user_id=f"u{i % 7}") for i in range(40)]
    store.insert_records(records)
    seen, cursor = [], None
    while True:
        page, cursor = reader.users_page("org1", RequestFilter(), sort="requests",
                                         limit=3, cursor=cursor)
        seen += [(u["user_id"], u["requests"]) for u in page]
        if cursor is None:
            break
    expected = sorted(((f"u{k}", sum(1 for i in range(40) if i % 7 == k)) for k in range(7)),
                      key=lambda item: (-item[1], item[0]))
    assert seen == expected
