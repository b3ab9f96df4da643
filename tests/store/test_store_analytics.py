"""Conformance: metrics by group, time buckets, users and the session tree, with every
expected number worked out by hand from the fixture below."""

import pytest

from heliograph.analytics.filters import RequestFilter

approx = pytest.approx


@pytest.fixture
def metric_set(store, make_record):
    store.insert_records([
        make_record("r1", at="2024-03-04T10:00:00.000000Z", model="a", provider="p1",
                    status=200, cost_usd=0.01, cost_known=True, prompt_tokens=10,
                    completion_tokens=5, latency_ms=100.0, user_id="u1",
                    properties={"Workflow": "w1"}),
        # Unpriced: its cost must not be summed, and must not count as 0 either.
        make_record("r2", at="2024-03-04T11:00:00.000000Z", model="a", provider="p1",
                    status=500, cost_usd=None, cost_known=False, prompt_tokens=20,
                    completion_tokens=0, latency_ms=300.0, user_id="u1"),
        make_record("r3", at="2024-03-05T09:00:00.000000Z", model="a", provider="p2",
                    status=200, cost_usd=0.0, cost_known=True, cost_saved_usd=0.02,
                    cache="hit", prompt_tokens=10, completion_tokens=5, latency_ms=5.0,
                    user_id="u2", properties={"workflow": "w2"}),
        make_record("r4", at="2024-03-05T10:00:00.000000Z", model="b", provider="p2",
                    status=429, cost_usd=0.5, cost_known=True, prompt_tokens=1,
                    completion_tokens=1, latency_ms=50.0, cache="miss"),
        make_record("r5", at="2024-03-06T10:00:00.000000Z", model="b", provider="p1",
                    status=200, cost_usd=0.25, cost_known=True, prompt_tokens=100,
                    completion_tokens=50, latency_ms=150.0, user_id="u2",
                    properties={"WORKFLOW": "w1"}),
        make_record("other", organization="org2", model="a", status=500, cost_usd=9.0,
                    cost_known=True, latency_ms=9999.0, user_id="u1"),
    ])


# p95 of up to 20 requests is the largest latency (nearest rank): exact from the rollups'
# histogram too, which keeps each group's extremes. p50 is read inside its histogram bin
# (bins span a factor of √2; 100 ms lies in [90.5, 128)).
MODEL_A = {"key": "a", "requests": 3, "errors": 1, "error_rate": approx(1 / 3),
           "cost_usd": approx(0.01), "prompt_tokens": 40, "completion_tokens": 10,
           "avg_latency_ms": approx(135.0), "p95_latency_ms": 300.0, "cache_hits": 1,
           "p50_latency_ms": approx(100.0, rel=0.3), "total_tokens": 50,
           "cost_saved_usd": approx(0.02), "unpriced_requests": 1}
MODEL_B = {"key": "b", "requests": 2, "errors": 1, "error_rate": 0.5,
           "cost_usd": approx(0.75), "prompt_tokens": 101, "completion_tokens": 51,
           "avg_latency_ms": approx(100.0), "p95_latency_ms": 150.0, "cache_hits": 0,
           "p50_latency_ms": approx(50.0, rel=0.3), "total_tokens": 152, "cost_saved_usd": 0.0,
           "unpriced_requests": 0}
TOTAL = {"requests": 5, "errors": 2, "error_rate": 0.4, "cost_usd": approx(0.76),
         "prompt_tokens": 141, "completion_tokens": 61, "avg_latency_ms": approx(121.0),
         "p95_latency_ms": 300.0, "cache_hits": 1, "p50_latency_ms": approx(100.0, rel=0.3),
         "total_tokens": 202, "cost_saved_usd": approx(0.02), "unpriced_requests": 1}


def test_metrics_by_model(store, metric_set, reader):
    result = reader.metrics("org1", RequestFilter(), "model")
    assert result == {"data": [MODEL_A, MODEL_B], "total": TOTAL}


def test_metrics_by_provider_and_user(store, metric_set, reader):
    by_provider = reader.metrics("org1", RequestFilter(), "provider")["data"]
    assert [(g["key"], g["requests"], g["errors"]) for g in by_provider] == [
        ("p1", 3, 1), ("p2", 2, 1)]
    by_user = reader.metrics("org1", RequestFilter(), "user_id")["data"]
    # Ties in requests are ordered by key, and records without a user group under null.
    assert [(g["key"], g["requests"]) for g in by_user] == [("u1", 2), ("u2", 2), (None, 1)]
    assert by_user[2]["cost_usd"] == approx(0.5)


@pytest.mark.parametrize("group_by", ["property.workflow", "property.Workflow"])
def test_metrics_by_property(store, metric_set, group_by, reader):
    data = reader.metrics("org1", RequestFilter(), group_by)["data"]
    assert [(g["key"], g["requests"]) for g in data] == [("w1", 2), (None, 2), ("w2", 1)]
    w1 = data[0]
    assert w1["cost_usd"] == approx(0.26)
    assert w1["avg_latency_ms"] == approx(125.0)
    assert w1["prompt_tokens"] == 110


def test_metrics_apply_filters(store, metric_set, reader):
    result = reader.metrics("org1", RequestFilter(provider="p1"), "model")
    assert [(g["key"], g["requests"]) for g in result["data"]] == [("a", 2), ("b", 1)]
    assert result["total"]["requests"] == 3
    assert result["total"]["cost_usd"] == approx(0.26)
    filtered = reader.metrics("org1", RequestFilter(properties={"workflow": "w1"}), "model")
    assert filtered["total"]["requests"] == 2


def test_unknown_cost_is_never_summed(store, make_record, reader):
    # cost_known decides, even if a (partial) number was recorded alongside.
    store.insert_records([
        make_record("priced", model="m", user_id="u", cost_usd=0.5, cost_known=True),
        make_record("partial", model="m", user_id="u", cost_usd=2.0, cost_known=False),
        make_record("unpriced", model="m", user_id="u", cost_usd=None, cost_known=False),
    ])
    result = reader.metrics("org1", RequestFilter(), "model")
    assert result["data"][0]["cost_usd"] == approx(0.5)
    assert result["total"]["cost_usd"] == approx(0.5)
    assert reader.user("org1", "u")["cost_usd"] == approx(0.5)


def test_metrics_of_nothing(store, reader):
    result = reader.metrics("org1", RequestFilter(), "model")
    assert result == {"data": [], "total": {
        "requests": 0, "errors": 0, "error_rate": 0.0, "cost_usd": 0.0,
        "prompt_tokens": 0, "completion_tokens": 0, "avg_latency_ms": None,
        "p95_latency_ms": None, "cache_hits": 0, "p50_latency_ms": None,
        "total_tokens": 0, "cost_saved_usd": 0.0, "unpriced_requests": 0}}


@pytest.mark.parametrize("group_by", ["nope", "property.", "created_at", "status", ""])
def test_unknown_group_by_is_a_value_error(store, group_by, reader):
    with pytest.raises(ValueError):
        reader.metrics("org1", RequestFilter(), group_by)


def test_p95_is_nearest_rank_within_its_bin(store, make_record, reader):
    # 20 values 1..20: rank ceil(0.95 * 20) = 19 → 19, in the histogram bin [16, 22.6)
    # with 16..20: interpolated by rank inside it, clamped to the largest value (20), the
    # estimate is 16 + 4 * (19 - 15) / 5 = 19.2. Inserted shuffled.
    latencies = [7, 20, 1, 13, 2, 19, 3, 18, 4, 17, 5, 16, 6, 15, 8, 14, 9, 12, 10, 11]
    store.insert_records([make_record(f"r{i}", model="m", latency_ms=float(v))
                          for i, v in enumerate(latencies)]
                         + [make_record("no-latency", model="m", latency_ms=None)])
    group = reader.metrics("org1", RequestFilter(), "model")["data"][0]
    assert group["requests"] == 21
    assert group["p95_latency_ms"] == approx(19.2)
    assert group["avg_latency_ms"] == approx(10.5)   # records without latency excluded


@pytest.fixture
def time_set(store, make_record):
    store.insert_records([
        make_record("sun", at="2024-03-10T23:30:00.000000Z"),     # a Sunday
        make_record("mon1", at="2024-03-11T00:15:00.000000Z"),    # the next Monday
        make_record("mon2", at="2024-03-11T00:45:59.999999Z"),
        make_record("tue", at="2024-12-31T12:00:00.000000Z"),
        make_record("wed", at="2025-01-01T08:00:00.000000Z", status=503),
    ])


@pytest.mark.parametrize("group_by, expected", [
    ("hour", [("2024-03-10T23:00Z", 1), ("2024-03-11T00:00Z", 2),
              ("2024-12-31T12:00Z", 1), ("2025-01-01T08:00Z", 1)]),
    ("day", [("2024-03-10", 1), ("2024-03-11", 2), ("2024-12-31", 1), ("2025-01-01", 1)]),
    # ISO weeks start on Monday; the week of 2025-01-01 starts in 2024.
    ("week", [("2024-03-04", 1), ("2024-03-11", 2), ("2024-12-30", 2)]),
    ("month", [("2024-03", 3), ("2024-12", 1), ("2025-01", 1)]),
])
def test_time_buckets(store, time_set, group_by, expected, reader):
    data = reader.metrics("org1", RequestFilter(), group_by)["data"]
    assert [(g["key"], g["requests"]) for g in data] == expected


def test_time_bucket_aggregates(store, time_set, reader):
    week = reader.metrics("org1", RequestFilter(), "week")["data"][-1]
    assert week["key"] == "2024-12-30"
    assert (week["errors"], week["error_rate"]) == (1, 0.5)


def test_users(store, metric_set, reader):
    users = reader.users("org1", RequestFilter())
    assert users == [
        {"user_id": "u1", "requests": 2, "errors": 1, "error_rate": 0.5,
         "cost_usd": approx(0.01), "prompt_tokens": 30, "completion_tokens": 5,
         "avg_latency_ms": approx(200.0), "first_seen": "2024-03-04T10:00:00.000000Z",
         "last_seen": "2024-03-04T11:00:00.000000Z", "models": {"a": 2}},
        {"user_id": "u2", "requests": 2, "errors": 0, "error_rate": 0.0,
         "cost_usd": approx(0.25), "prompt_tokens": 110, "completion_tokens": 55,
         "avg_latency_ms": approx(77.5), "first_seen": "2024-03-05T09:00:00.000000Z",
         "last_seen": "2024-03-06T10:00:00.000000Z", "models": {"a": 1, "b": 1}},
    ]
    assert reader.user("org1", "u2") == users[1]
    assert reader.user("org1", "nobody") is None
    assert reader.user("org2", "u2") is None
    assert reader.user("org2", "u1")["requests"] == 1
    only_b = reader.users("org1", RequestFilter(model="b"))
    assert [(u["user_id"], u["requests"], u["models"]) for u in only_b] == [
        ("u2", 1, {"b": 1})]


@pytest.fixture
def session_set(store, make_record):
    def step(request_id, minute, path, **fields):
        return make_record(request_id, at=f"2024-03-04T10:{minute:02d}:00.000000Z",
                           session_id="s1", session_path=path, session_name="Trip planner",
                           request={"big": "body"}, response={"big": "body"}, **fields)
    store.insert_records([
        step("start", 0, "/", cost_usd=0.001, cost_known=True, total_tokens=10,
             latency_ms=100.0),
        step("plan", 1, "/plan", cost_usd=0.01, cost_known=True, total_tokens=100,
             latency_ms=200.0),
        step("search1", 2, "/plan/search", cost_usd=0.02, cost_known=True,
             total_tokens=200, latency_ms=300.0),
        # Unpriced, and no total_tokens: prompt + completion stand in.
        step("search2", 3, "/plan/search/", cost_usd=None, cost_known=False,
             prompt_tokens=30, completion_tokens=20, latency_ms=400.0),
        step("answer", 4, "/answer", cost_usd=0.1, cost_known=True, total_tokens=1000,
             latency_ms=None),
        make_record("elsewhere", session_id="s1", session_path="/plan",
                    organization="org2", cost_usd=5.0, cost_known=True),
        make_record("other-session", session_id="s2", session_path="/plan"),
    ])


def test_session_tree(store, session_set, reader):
    session = reader.session("org1", "s1")
    assert {k: session[k] for k in session if k != "tree"} == {
        "session_id": "s1", "name": "Trip planner", "requests": 5,
        "cost_usd": approx(0.131), "total_tokens": 1360, "latency_ms": approx(1000.0)}

    root, plan, answer = session["tree"]
    assert (root["path"], root["name"], root["children"]) == ("/", "/", [])
    assert [r["id"] for r in root["requests"]] == ["start"]

    assert (plan["path"], plan["name"]) == ("/plan", "plan")
    assert [r["id"] for r in plan["requests"]] == ["plan"]
    assert (plan["cost_usd"], plan["total_tokens"], plan["latency_ms"]) == (
        approx(0.03), 350, approx(900.0))
    (search,) = plan["children"]
    assert (search["path"], search["name"], search["children"]) == (
        "/plan/search", "search", [])
    assert [r["id"] for r in search["requests"]] == ["search1", "search2"]   # oldest first
    assert (search["cost_usd"], search["total_tokens"], search["latency_ms"]) == (
        approx(0.02), 250, approx(700.0))

    assert (answer["path"], answer["cost_usd"], answer["latency_ms"]) == (
        "/answer", approx(0.1), 0)
    summary = search["requests"][0]
    assert summary["request"] is None and summary["response"] is None
    assert summary["session_path"] == "/plan/search"


def test_unknown_session_is_none(store, session_set, reader):
    assert reader.session("org1", "missing") is None
    assert reader.session("org2", "s2") is None


def test_sessions_newest_first_paged(store, session_set, make_record, reader):
    store.insert_records([make_record("late", at="2024-03-05T00:00:00.000000Z",
                                      session_id="s3", cost_usd=0.5, cost_known=True)])
    first, cursor = reader.sessions("org1", RequestFilter(), limit=2)
    assert [s["session_id"] for s in first] == ["s3", "s1"] and cursor
    assert first[1] == {"session_id": "s1", "name": "Trip planner", "requests": 5,
                        "cost_usd": approx(0.131), "first_at": "2024-03-04T10:00:00.000000Z",
                        "last_at": "2024-03-04T10:04:00.000000Z"}
    rest, last = reader.sessions("org1", RequestFilter(), limit=2, cursor=cursor)
    assert [s["session_id"] for s in rest] == ["s2"] and last is None
    only_plan, _ = reader.sessions("org1", RequestFilter(model="none"))
    assert only_plan == []
    theirs, _ = reader.sessions("org2", RequestFilter())
    assert [(s["session_id"], s["requests"]) for s in theirs] == [("s1", 1)]


def test_postgres_analytics_sort_a_window_edge_in_memory(store_kind, migrated_url):
    """The read side's connections get work_mem enough to group a 10M-a-month window edge
    in memory (analytics/_postgres.py), and never less than the server was given."""
    if store_kind != "postgres":
        pytest.skip("work_mem is PostgreSQL's")
    from heliograph.analytics import open_analytics
    from heliograph.analytics._postgres import ANALYTICS_WORK_MEM

    def work_mem(url: str) -> str:
        opened = open_analytics(url)
        try:
            return opened._fetchall("SHOW work_mem", [])[0][0]
        finally:
            opened.close()

    assert work_mem(migrated_url) == ANALYTICS_WORK_MEM
    # A server (here: the connection's options) configured above it keeps its own.
    assert work_mem(migrated_url + "%20-cwork_mem%3D64MB") == "64MB"


def test_postgres_analytics_connections_come_up_under_a_tiny_query_limit(
        store_kind, migrated_url):
    """A new analytics connection runs its setup (work_mem, jit) before its statement
    limit applies: with a 1 ms limit, a setup statement that ran longer (a busy server)
    was cancelled and failed the connection, and the API answered a 503 "unreachable"
    where a slow query gets a 504 (seen in CI). Here the setup's work_mem check is made
    slow for sure: the connection's search path finds a pg_size_bytes of the test's
    schema, which sleeps 20 ms, before PostgreSQL's own."""
    if store_kind != "postgres":
        pytest.skip("the analytics pool's setup is PostgreSQL's")
    import psycopg

    from heliograph.analytics._postgres import ANALYTICS_WORK_MEM, PostgresConnections
    from heliograph.analytics.errors import QueryTimeout

    with psycopg.connect(migrated_url, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        conn.execute(f"CREATE FUNCTION {schema}.pg_size_bytes(text) RETURNS bigint LANGUAGE sql"
                     " AS 'SELECT pg_catalog.pg_size_bytes($1)"
                     " FROM (SELECT pg_catalog.pg_sleep(0.02)) AS slept'")
    slow_setup = f"{migrated_url}%20-csearch_path%3D{schema},pg_catalog"
    pool = PostgresConnections(slow_setup, 0.001, size=1)
    settings = None
    try:
        for _ in range(50):   # the reading query is held to 1 ms too: read it again
            try:
                with pool.cursor() as cur:
                    settings = cur.execute("SELECT current_setting('statement_timeout'),"
                                           " current_setting('work_mem'),"
                                           " current_setting('jit')").fetchone()
                break
            except QueryTimeout:
                continue
        assert settings == ("1ms", ANALYTICS_WORK_MEM, "off")
    finally:
        pool.close()
        with psycopg.connect(migrated_url, autocommit=True) as conn:
            conn.execute(f"DROP FUNCTION {schema}.pg_size_bytes(text)")


def test_overview_reads_each_window_edge_once_for_its_three_groupings(
        store, reader, raw_reader, make_record):
    """The overview groups one window by day, model and provider; the minutes past its
    whole hours come from raw rows, read once per edge for the three (not three times),
    with the same answer as every number from raw rows."""
    at = [("e1", "2024-03-04T10:05:00.000000Z", "a", "p1"),   # before since: left out
          ("r1", "2024-03-04T10:20:00.000000Z", "a", "p1"),   # first edge (raw)
          ("r2", "2024-03-04T10:40:00.000000Z", "b", "p2"),
          ("r3", "2024-03-05T12:00:00.000000Z", "a", "p2"),   # whole hours / days
          ("r4", "2024-03-06T08:15:00.000000Z", "b", "p1"),   # last edge (raw)
          ("r5", "2024-03-06T08:45:00.000000Z", "a", "p1"),
          ("r6", "2024-03-06T08:46:00.000000Z", "a", "p1"),
          ("e2", "2024-03-06T08:55:00.000000Z", "b", "p2")]   # at/after until: left out
    store.insert_records([make_record(rid, at=ts, model=model, provider=provider,
                                      latency_ms=100.0 + i, cost_usd=0.01 * i,
                                      cost_known=True, prompt_tokens=i)
                          for i, (rid, ts, model, provider) in enumerate(at)])
    flt = RequestFilter(since="2024-03-04T10:10:00.000000Z",
                        until="2024-03-06T08:50:00.000000Z")
    statements: list[str] = []
    fetch = reader._fetchall

    def counted(sql, params):
        statements.append(sql)
        return fetch(sql, params)

    reader._fetchall = counted
    got = reader.overview("org1", flt)
    raw_scans = [sql for sql in statements if "lat_bin" in sql]
    assert len(raw_scans) == 2   # one per edge (three groupings each read both before)

    def counts(rows):
        return {row["key"]: row["requests"] for row in rows}

    assert counts(got["by_model"]) == {"a": 4, "b": 2}
    assert counts(got["by_provider"]) == {"p1": 4, "p2": 2}
    assert sorted(counts(got["by_day"]).values()) == [1, 2, 3]
    expected = raw_reader.overview("org1", flt)
    for part in ("by_day", "by_model", "by_provider"):
        assert got[part] == [{k: approx(v) if isinstance(v, float) else v
                              for k, v in row.items()} for row in expected[part]]
    assert got["total"]["requests"] == expected["total"]["requests"] == 6
    assert got["total"]["cost_usd"] == approx(expected["total"]["cost_usd"])
