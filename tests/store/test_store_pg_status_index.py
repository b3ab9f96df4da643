"""The status index of `requests` holds only records whose status is not 200 on
PostgreSQL (migration 18): most records are 200s, which it never served (the listing
index finds a page of them at once), and each cost the writer an index entry. Filters by
status answer as before on both stores, and on PostgreSQL a status or a range without
200 reads the index even from a prepared statement's generic plan (the status is in
the SQL, not a parameter)."""

import os

import pytest
from psycopg import sql as sql_text

from heliograph.analytics._where import compile_filter
from heliograph.analytics.conditions import condition
from heliograph.analytics.filters import RequestFilter

POSTGRES = pytest.mark.skipif(not os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL"),
                              reason="HELIOGRAPH_TEST_POSTGRES_URL not set")
_STATUSES = (200, 200, 200, 503, 200, 429, 200, 500, 200, 201)


def _records(make_record, count=60):
    # Three months, so the index of each month's partition is looked at.
    return [make_record(f"r{i:03d}", at=f"2031-0{1 + i % 3}-02T10:00:{i % 60:02d}.{i:06d}Z",
                        status=_STATUSES[i % len(_STATUSES)]) for i in range(count)]


@POSTGRES
@pytest.mark.parametrize("store_kind", ["postgres"])
def test_every_months_status_index_leaves_the_200s_out(store, make_record):
    store.insert_records(_records(make_record))
    with store.transaction() as cur:
        found = store.execute(
            cur, "SELECT t.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
                 " JOIN pg_class i ON i.oid = x.indexrelid"
                 " JOIN pg_class t ON t.oid = x.indrelid"
                 " WHERE i.relname LIKE ? AND t.relnamespace = current_schema()::regnamespace",
            ("requests_org_status%",)).fetchall()
    tables = {table for table, _definition in found}
    assert {"requests", "requests_p203101", "requests_p203102", "requests_p203103",
            "requests_pdefault"} <= tables, tables
    for table, definition in found:
        assert definition.endswith(" WHERE (status <> 200)"), (table, definition)


@pytest.mark.parametrize("flt, wanted", [
    (RequestFilter(status=200), {200}),
    (RequestFilter(status=503), {503}),
    (RequestFilter(conditions=[condition("status", "gte", 429)]), {429, 500, 503}),
    (RequestFilter(conditions=[condition("status", "lt", 300)]), {200, 201}),
    (RequestFilter(conditions=[condition("status", "ne", 200)]), {201, 429, 500, 503}),
    (RequestFilter(conditions=[condition("status", "gt", 200.5)]), {201, 429, 500, 503}),
])
def test_a_listing_by_status_finds_every_record_of_it_newest_first(
        store, reader, make_record, flt, wanted):
    records = _records(make_record)
    store.insert_records(records)
    store.update_planner_stats()
    seen, cursor = [], None
    while True:
        page, cursor = reader.list_requests("org1", flt, 7, cursor)
        seen += [r["id"] for r in page]
        if not cursor:
            break
    expected = sorted(records, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    assert seen == [r["id"] for r in expected if r["status"] in wanted]


@POSTGRES
@pytest.mark.parametrize("store_kind", ["postgres"])
@pytest.mark.parametrize("flt", [
    RequestFilter(status=503),
    RequestFilter(conditions=[condition("status", "gte", 500)]),
], ids=["503", "gte 500"])
def test_a_generic_plan_of_a_status_filter_reads_the_status_index(store, make_record, flt):
    # A prepared statement's plan made for any parameter value could not prove that a
    # bound status excludes 200: the status is written in the SQL.
    store.insert_records([make_record(f"g{i:05d}", at=f"2031-01-{1 + i % 28:02d}T00:00:00"
                                      f".{i:06d}Z", status=503 if i % 1000 == 7 else 200)
                          for i in range(3000)])
    store.update_planner_stats(every_table=True)
    where, params = compile_filter("org1", flt, store.dialect.like_ci)
    numbered = where.split("?")
    sql = numbered[0] + "".join(f"${n}{part}" for n, part in enumerate(numbered[1:], 1))
    with store.transaction() as cur:
        store.execute(cur, "SET LOCAL plan_cache_mode = force_generic_plan")
        types = [{str: "text", int: "integer", float: "float8"}[type(value)]
                 for value in params]
        cur.execute(f"PREPARE listing ({', '.join(types)}) AS SELECT r.id FROM requests r"
                    " WHERE " + sql
                    + " ORDER BY r.created_at DESC, r.id DESC LIMIT 50")
        # The values written in (EXECUTE takes no bound parameter).
        arguments = sql_text.SQL(", ").join(sql_text.Literal(value) for value in params)
        text = "\n".join(row[0] for row in cur.execute(
            sql_text.SQL("EXPLAIN EXECUTE listing({})").format(arguments)).fetchall())
        cur.execute("DEALLOCATE listing")
    assert "requests_org_status" in text, text
