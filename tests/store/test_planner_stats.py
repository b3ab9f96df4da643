"""Planner statistics on each store (the planner-stats job's store call): without them a
listing by a common value is read by the wrong index. PostgreSQL's autovacuum gathers them
only where it is on, and a bulk load outruns it; the test server runs with it off."""

import re
import time

from heliograph.analytics.filters import RequestFilter


def explain(store, flt):
    from heliograph.analytics._where import compile_filter
    where, params = compile_filter("org1", flt, store.dialect.like_ci)
    sql = (f"SELECT r.id FROM requests r WHERE {where}"
           " ORDER BY r.created_at DESC, r.id DESC LIMIT 50")
    with store.transaction() as cur:
        if store.dialect.name == "sqlite":
            rows = store.execute(cur, "EXPLAIN QUERY PLAN " + sql, params).fetchall()
            return "\n".join(row[-1] for row in rows)
        rows = store.execute(cur, "EXPLAIN " + sql, params).fetchall()
        return "\n".join(row[0] for row in rows)


def sorts(plan: str) -> bool:
    """Whether a PostgreSQL plan sorts rows (a Sort node; a Merge Append of partitions
    read in order names its "Sort Key" without sorting anything)."""
    return re.search(r"(^|->)\s*(Incremental )?Sort\s+\(", plan, re.MULTILINE) is not None


def analyzed(store) -> bool:
    with store.transaction() as cur:
        if store.dialect.name == "sqlite":
            return bool(store.execute(cur, "SELECT COUNT(*) FROM sqlite_stat1"
                                           " WHERE tbl = 'requests'").fetchone()[0])
        return bool(store.execute(cur, "SELECT COUNT(*) FROM pg_stats WHERE schemaname ="
                                       " current_schema() AND tablename = 'requests'"
                                       ).fetchone()[0])


def wait_for_change_counts(store, rows: int) -> None:
    """PostgreSQL's per-table change counters (what the job reads) are flushed by each
    backend a moment after its transaction: wait until they show the inserts."""
    if store.dialect.name == "sqlite":
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with store.transaction() as cur:
            # requests is partitioned by month: its partitions count the changes.
            seen = store.execute(cur, "SELECT SUM(n_mod_since_analyze) FROM"
                                      " pg_stat_user_tables WHERE schemaname ="
                                      " current_schema() AND relname LIKE ?",
                                 ("requests%",)).fetchone()
        if seen and (seen[0] or 0) >= rows:
            return
        time.sleep(0.2)


def test_a_listing_by_model_reads_the_time_index_in_order_once_analyzed(store, make_record):
    store.insert_records([make_record(
        f"m{i:05d}", at=f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:00:{i % 60:02d}.{i:06d}Z",
        model=f"model-{i % 4}", user_id=f"u{i % 50}") for i in range(4000)])
    wait_for_change_counts(store, 4000)
    store.update_planner_stats()
    assert analyzed(store)
    text = explain(store, RequestFilter(model="model-1"))
    # Newest first straight from the (organization, created_at, id) index, stopping at
    # the page's end: no sort of every record of the organization.
    assert "requests_org_created" in text, text
    assert not sorts(text) and "TEMP B-TREE" not in text, text
    store.update_planner_stats()  # again: nothing changed, nothing to do, no error


def test_a_common_property_value_pages_in_time_order_like_a_rare_one(store, reader,
                                                                   make_record):
    # Past _where.COMMON_PROPERTY matches a listing checks records one by one, newest
    # first (reading the time index, not sorting every match); the pages must hold the
    # same records as the collect-then-sort form a rarer value gets.
    from heliograph.analytics._where import COMMON_PROPERTY, compile_filter
    total = COMMON_PROPERTY * 6 // 5 + 200
    store.insert_records([make_record(
        f"c{i:05d}", at=f"2024-03-{1 + i // 1000:02d}T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z",
        properties={"feature": "search" if i % 7 else "rare", "env": "prod"},
        organization="org1" if i % 50 else "org2") for i in range(total)])
    # (The month's partition is new: the job knows it changed once the counters show it.)
    wait_for_change_counts(store, total)
    store.update_planner_stats()
    expected = sorted(f"c{i:05d}" for i in range(total) if i % 50 and i % 7)
    assert len(expected) >= COMMON_PROPERTY
    seen, cursor = [], None
    while True:
        page, cursor = reader.list_requests("org1", RequestFilter(
            properties={"feature": "search", "env": "prod"}), 700, cursor)
        seen += [r["id"] for r in page]
        assert [r["created_at"] for r in page] == sorted(
            (r["created_at"] for r in page), reverse=True)
        if not cursor:
            break
    assert sorted(seen) == expected and len(seen) == len(set(seen))
    rare, _ = reader.list_requests("org1", RequestFilter(properties={"feature": "rare"}), 1000)
    assert sorted(r["id"] for r in rare) == sorted(
        f"c{i:05d}" for i in range(total) if i % 50 and not i % 7)
    # The common form's plan: the time index, in order, no sort of the matches.
    where, params = compile_filter("org1", RequestFilter(properties={"feature": "search"}),
                                   store.dialect.like_ci, frozenset({"feature"}))
    sql = (f"SELECT r.id FROM requests r WHERE {where}"
           " ORDER BY r.created_at DESC, r.id DESC LIMIT 50")
    with store.transaction() as cur:
        if store.dialect.name == "sqlite":
            text = "\n".join(row[-1] for row in store.execute(
                cur, "EXPLAIN QUERY PLAN " + sql, params).fetchall())
        else:
            text = "\n".join(row[0] for row in store.execute(cur, "EXPLAIN " + sql,
                                                             params).fetchall())
    assert "requests_org_created" in text and not sorts(text) \
        and "TEMP B-TREE" not in text, text
    # Each record checked through a property index (a single lookup), not a scan.
    assert re.search(r"Index (Only )?Scan using request_properties|SEARCH p USING", text), text
