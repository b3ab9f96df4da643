"""PostgreSQL's monthly partitions (store/_partitions.py, migration 12): retention drops a
whole month by detaching it, an existing database is converted in place, a record of any
date is stored, and a record id stays unique within its organization across months."""

import os

import pytest

from heliograph.analytics import open_analytics
from heliograph.analytics.filters import RequestFilter
from heliograph.store import open_store

pytestmark = pytest.mark.skipif(not os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL"),
                                reason="HELIOGRAPH_TEST_POSTGRES_URL not set")


@pytest.fixture
def store_kind():
    return "postgres"


def query(store, sql, params=()):
    with store.transaction() as cur:
        return store.execute(cur, sql, params).fetchall()


def partitions(store, table):
    """(name, bound) of each attached partition of `table`."""
    return sorted(query(store, "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
                               " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                               " WHERE i.inhparent = ?::regclass", (table,)))


def tables_named(store, pattern):
    return sorted(row[0] for row in query(
        store, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace ="
               " current_schema()::regnamespace AND relname LIKE ?", (pattern,)))


def count(store, table, where="TRUE", params=()):
    return query(store, f"SELECT COUNT(*) FROM {table} WHERE {where}", params)[0][0]


def purge_all(store, records_before, bodies_before, batch=3):
    steps = []
    while deleted := store.purge(records_before, bodies_before, batch=batch):
        assert deleted <= batch and len(steps) < 100
        steps.append(deleted)
    return steps


def test_retention_drops_a_whole_month_by_detaching_it(store, reader, make_record):
    records = [make_record(f"{month}-{i}", at=f"2024-{month}-{i + 10}T08:00:00.000000Z",
                           organization=f"org{i % 2 + 1}", user_id="u", session_id="s",
                           properties={"team": month}, cost_usd=0.5,
                           request={"text": f"words of {month}"})
               for month in ("01", "02", "03") for i in range(4)]
    store.insert_records(records)
    store.index_search()
    assert "requests_p202401" in dict(partitions(store, "requests"))
    rollups_before = query(store, "SELECT * FROM rollup_daily ORDER BY 1, 2, 3, 4, 5, 6")
    assert rollups_before

    # January wholly before the cut-off goes as a partition; February's rows before it
    # (the 10th and 11th) one by one.
    purge_all(store, "2024-02-12T00:00:00Z", None)

    assert "requests_p202401" not in dict(partitions(store, "requests"))
    assert "request_bodies_p202401" not in dict(partitions(store, "request_bodies"))
    assert tables_named(store, "%p202401%") == []  # detached, then dropped
    left = sorted(row[0] for row in query(store, "SELECT id FROM requests"))
    assert left == ["02-2", "02-3", "03-0", "03-1", "03-2", "03-3"]
    # What referred to the dropped records went with them; the rollups stayed.
    assert count(store, "request_ids") == 6
    assert count(store, "request_properties", "value = ?", ("01",)) == 0
    assert count(store, "request_properties") == 6
    assert count(store, "request_words") == 6
    assert query(store, "SELECT * FROM rollup_daily ORDER BY 1, 2, 3, 4, 5, 6") \
        == rollups_before
    assert reader.get_request("org1", "01-0") is None
    assert reader.get_request("org1", "03-0")["request"] == {"text": "words of 03"}
    assert [r["id"] for r in reader.list_requests("org1", RequestFilter(q="words"))[0]] \
        == ["03-2", "03-0", "02-2"]


def test_retention_drops_a_month_of_bodies_and_keeps_its_metrics(store, reader, make_record):
    store.insert_records([make_record(f"r{i}", at=f"2024-0{i + 1}-05T00:00:00.000000Z",
                                      request={"text": f"body {i}"}, cost_usd=1.0)
                          for i in range(3)])
    store.index_search()
    purge_all(store, None, "2024-03-01T00:00:00Z")
    assert tables_named(store, "request_bodies_p20240_") == ["request_bodies_p202403"]
    assert len(tables_named(store, "requests_p20240_")) == 3
    kept = reader.get_request("org1", "r0")
    assert kept["request"] is None and kept["cost_usd"] == 1.0
    assert reader.get_request("org1", "r2")["request"] == {"text": "body 2"}
    assert count(store, "request_words") == 1


def test_records_of_any_date_are_stored_and_found_by_id(store, reader, make_record):
    store.insert_records([
        make_record("past", at="1990-01-31T23:59:59.999999Z", session_id="s1",
                    request={"a": 1}),
        make_record("future", at="2999-12-01T00:00:00.000000Z", session_id="s1"),
        make_record("undated", at="not a date", session_id="s1"),
    ])
    names = dict(partitions(store, "requests"))
    assert names["requests_p199001"] == "FOR VALUES FROM ('1990-01') TO ('1990-02')"
    assert names["requests_p299912"] == "FOR VALUES FROM ('2999-12') TO ('3000-01')"
    assert query(store, "SELECT id FROM requests_pdefault") == [("undated",)]
    assert reader.get_request("org1", "past")["request"] == {"a": 1}
    assert store.set_feedback("org1", "future", True)
    assert store.set_score("org1", "undated", {"quality": 3})
    assert store.request_id_used("org1", "past") and not store.request_id_used("org2", "past")
    assert reader.get_request("org1", "future")["feedback"] is True
    assert reader.get_request("org1", "undated")["scores"] == {"quality": 3}
    session = reader.session("org1", "s1")
    assert session is not None and session["requests"] == 3


def test_an_id_stays_unique_in_its_organization_across_months(store, reader, make_record):
    store.insert_records([make_record("dup", at="2024-01-05T00:00:00.000000Z")])
    # A replay of the same record is skipped; a different record reusing the id in
    # another month is stored under a fresh id; another organization may use it.
    store.insert_records([make_record("dup", at="2024-01-05T00:00:00.000000Z"),
                          make_record("dup", at="2024-06-05T00:00:00.000000Z"),
                          make_record("dup", at="2024-06-05T00:00:00.000000Z",
                                      organization="org2")])
    rows = query(store, "SELECT organization, id, created_at, error FROM requests"
                        " ORDER BY organization, created_at")
    assert [(org, at) for org, _id, at, _error in rows] == [
        ("org1", "2024-01-05T00:00:00.000000Z"), ("org1", "2024-06-05T00:00:00.000000Z"),
        ("org2", "2024-06-05T00:00:00.000000Z")]
    assert rows[0][1] == "dup" and rows[2][1] == "dup"
    assert rows[1][1] != "dup" and "already used" in rows[1][3]
    assert count(store, "request_ids") == 3


def test_a_month_made_later_takes_its_rows_from_the_default_partition(store, make_record):
    from heliograph.store import _partitions
    store.insert_records([make_record("early", at="2031-05-02T00:00:00.000000Z")])
    # As if the month had not existed when this row came (another process dropped it).
    with store.transaction(write=True) as cur:
        store.execute(cur, "ALTER TABLE requests DETACH PARTITION requests_p203105")
        store.execute(cur, "INSERT INTO requests SELECT * FROM requests_p203105")
        store.execute(cur, "DROP TABLE requests_p203105")
    assert query(store, "SELECT id FROM requests_pdefault") == [("early",)]
    with store.transaction(write=True) as cur:
        _partitions.create_month(cur, "requests", "2031-05")
    assert query(store, "SELECT id FROM requests_p203105") == [("early",)]
    assert count(store, "requests_pdefault") == 0


def test_the_planner_reads_only_the_months_a_time_range_covers(store, make_record):
    store.insert_records([make_record(f"m{i}", at=f"2024-0{i % 3 + 1}-10T00:00:00.000000Z")
                          for i in range(30)])
    with store.transaction() as cur:
        plan = "\n".join(row[0] for row in store.execute(
            cur, "EXPLAIN SELECT id FROM requests WHERE organization = 'org1'"
                 " AND created_at >= '2024-02-01' AND created_at < '2024-02-20'"
                 " ORDER BY created_at DESC LIMIT 50").fetchall())
    assert "requests_p202402" in plan, plan
    assert "requests_p202401" not in plan and "requests_p202403" not in plan, plan


# -- migration 12 on a database that has records -----------------------------------------
def test_migration_12_partitions_an_existing_database_in_place(store_url, make_record):
    from heliograph.store.postgres import PostgresStore
    old = PostgresStore(store_url)
    old.migrate(until=11)
    assert not old.partitioned
    old.insert_records([make_record(f"old{i}", at=f"2024-0{i % 3 + 1}-0{i % 9 + 1}T00:00:00Z",
                                    user_id=f"u{i % 2}", session_id="s", properties={"k": "v"},
                                    request={"text": f"body {i}"}) for i in range(20)]
                       + [make_record("ahead", at="2999-01-01T00:00:00Z")])
    old.update_planner_stats()
    old.close()

    store = open_store(store_url)  # migration 12
    reader = open_analytics(store_url)
    try:
        assert 12 in store.schema_versions() and store.partitioned
        # The partitioned table is new, and has no statistics until the job gathers them,
        # though none of its partitions changed since the last ANALYZE.
        stats = "SELECT COUNT(*) FROM pg_stats WHERE schemaname = current_schema()" \
                " AND tablename = 'requests'"
        assert query(store, stats) == [(0,)]
        store.update_planner_stats()
        assert query(store, stats)[0][0] > 0
        bounds = dict(partitions(store, "requests"))
        legacy = bounds.pop("requests_plegacy")
        assert legacy.startswith("FOR VALUES FROM (MINVALUE) TO (")
        assert bounds.pop("requests_pdefault") == "DEFAULT"
        assert bounds, "the coming months are made when the store opens"
        assert "request_bodies_plegacy" in dict(partitions(store, "request_bodies"))
        # The legacy table's indexes are the partitioned indexes' (attached, not rebuilt).
        attached = {row[0] for row in query(
            store, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                   " WHERE i.inhparent = 'requests_org_created'::regclass")}
        assert "requests_org_created_plegacy" in attached
        # The row dated past the legacy range got its own month.
        assert query(store, "SELECT tableoid::regclass::text FROM requests WHERE id = 'ahead'") \
            == [("requests_p299901",)]
        assert count(store, "request_ids") == 21
        assert count(store, "requests") == 21 and count(store, "request_bodies") == 20
        assert reader.get_request("org1", "old7")["request"] == {"text": "body 7"}
        assert len(reader.list_requests("org1", RequestFilter(user_id="u1"))[0]) == 10
        assert store.set_feedback("org1", "old3", False)
        store.insert_records([make_record("old3", at="2030-01-01T00:00:00Z"),
                              make_record("new", at="2030-01-01T00:00:00Z")])
        assert query(store, "SELECT id FROM requests WHERE created_at = ?"
                            " ORDER BY id", ("2030-01-01T00:00:00Z",))[-1] == ("new",)
        assert count(store, "requests", "id = 'old3'") == 1  # moved to a fresh id
        assert count(store, "requests") == 23
        # Once wholly past the cut-off, the legacy partition goes as a whole.
        purge_all(store, "2029-01-01T00:00:00Z", None, batch=50)
        assert "requests_plegacy" not in dict(partitions(store, "requests"))
        assert tables_named(store, "%plegacy") == []
        assert sorted(row[0] for row in query(store, "SELECT id FROM requests"))[-1] == "new"
        assert count(store, "request_ids") == 3
    finally:
        reader.close()
        store.close()


def test_a_month_busy_with_a_reader_is_deleted_in_batches_meanwhile(store, migrated_url,
                                                                   make_record):
    import psycopg

    from heliograph.store import _partitions
    store.insert_records([make_record(f"b{i}", at=f"2024-01-1{i}T00:00:00.000000Z")
                          for i in range(4)]
                         + [make_record("kept", at="2024-03-01T00:00:00.000000Z")])
    with psycopg.connect(migrated_url) as reader:  # a long report: holds the table
        reader.execute("SELECT COUNT(*) FROM requests, request_bodies").fetchone()
        # The DETACH gives up after its lock timeout; the month's rows go in batches.
        assert store.purge("2024-02-01T00:00:00Z", None, batch=3) == 3
        assert "requests_p202401" in dict(partitions(store, "requests"))
        assert store.purge("2024-02-01T00:00:00Z", None, batch=3) == 1  # no second wait
        reader.rollback()
    # Once the table is free (and the pause after a busy table is over), the now empty
    # month is detached and dropped.
    store._partitions._detach_not_before = 0.0
    purge_all(store, "2024-02-01T00:00:00Z", None)
    assert tables_named(store, "%p202401") == []
    assert [row[0] for row in query(store, "SELECT id FROM requests")] == ["kept"]
    assert _partitions.DETACH_RETRY_S >= 10


# -- migration 16: bodies kept whole up to 4 KB -------------------------------------------
def _body_storage(store, request_id):
    """(compression method or None, stored size, size of the JSON text) of a body."""
    return query(store, "SELECT pg_column_compression(request_body),"
                        " pg_column_size(request_body), octet_length(request_body)"
                        " FROM request_bodies WHERE request_id = ?", (request_id,))[0]


def test_a_bodies_row_up_to_4kb_stays_whole_and_a_larger_one_is_compressed(store, reader,
                                                                           make_record):
    # ~3.4 KB of JSON: PostgreSQL's default compressed a row over ~2 KB (and cut it into
    # TOAST chunks when still over 2 KB); a row over 4 KB still is.
    words = " ".join(f"word{i % 97}" for i in range(500))
    big = " ".join([words] * 8)
    store.insert_records([make_record("mid", at="2031-07-02T00:00:00Z", request={"text": words}),
                          make_record("big", at="2031-07-02T00:00:00Z", request={"text": big})])
    method, stored, length = _body_storage(store, "mid")
    assert 3000 < length < 4000
    assert method is None and stored >= length   # as written (and its 4-byte header)
    method, stored, length = _body_storage(store, "big")
    assert method is not None and stored < length / 2
    assert reader.get_request("org1", "mid")["request"] == {"text": words}
    assert reader.get_request("org1", "big")["request"] == {"text": big}


def test_migration_16_keeps_bodies_whole_in_the_months_there_are(store_url, make_record):
    from heliograph.store import _partitions
    from heliograph.store.postgres import PostgresStore
    old = PostgresStore(store_url)
    old.migrate(until=15)
    old.insert_records([make_record("before", at="2031-08-02T00:00:00Z")])
    old.close()
    store = open_store(store_url)
    try:
        assert 16 in store.schema_versions()
        options = dict(query(store, "SELECT c.relname, c.reloptions FROM pg_inherits i"
                                    " JOIN pg_class c ON c.oid = i.inhrelid"
                                    " WHERE i.inhparent = 'request_bodies'::regclass"))
        assert "request_bodies_p203108" in options and "request_bodies_pdefault" in options
        wanted = [f"toast_tuple_target={_partitions.BODIES_TOAST_TARGET}"]
        assert all(value == wanted for value in options.values()), options
        # The requests partitions keep PostgreSQL's defaults.
        assert query(store, "SELECT reloptions FROM pg_class"
                            " WHERE relname = 'requests_p203108'") == [(None,)]
    finally:
        store.close()
