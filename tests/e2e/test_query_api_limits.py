"""The query API's bounds, through the real gateway on each store: unknown parameters and
too many filters are 400s, a page of bodies is bounded in size, every join stays inside
the caller's organization, ids holding '/' are addressable, and heavy reports neither
hang (query deadline) nor stall proxied requests (their own threads and connections)."""

import concurrent.futures
import datetime as dt
import json
import os
import sqlite3
import statistics
import time
import urllib.request
import uuid

import openai
import pytest
from servers import ADMIN_KEY, Gateway

from heliograph.records import RECORD_KEYS
from heliograph.store import open_store


def org_key(gateway, org):
    created = gateway.cli("keys", "create", "--name", org, "--org", org)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def client(gateway, key=ADMIN_KEY):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def stored_record(request_id, organization, at, **fields):
    rec = dict.fromkeys(RECORD_KEYS)
    rec.update(id=request_id, organization=organization, created_at=at,
               path="/v1/chat/completions", status=200, properties={}, attempts=[],
               scores={}, cost_known=True, cost_usd=0.001, model="gpt-4o-mini",
               provider="openai", prompt_tokens=10, completion_tokens=5, latency_ms=120.0)
    rec.update(fields)
    return rec


def insert_records(database_url, records):
    """Many records at once, written the way the journal writer writes them."""
    store = open_store(database_url)
    try:
        for start in range(0, len(records), 1000):
            store.insert_records(records[start:start + 1000])
    finally:
        store.close()


def execute_sql(database_url, sql, params):
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url[len("sqlite:///"):]) as conn:
            conn.execute(sql, params)
        return
    import psycopg
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.replace("?", "%s"), params)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("path, names", [
    ("/api/v1/requests?latency_between=100", ["latency_between"]),  # latency_gt is a filter
    ("/api/v1/requests?model=x&colour=red&size=9", ["colour", "size"]),
    ("/api/v1/metrics?group_by=model&order=asc", ["order"]),
    ("/api/v1/users?limit=5&offset=5", ["offset"]),
    ("/api/v1/ratelimits?group_by=model", ["group_by"]),
    ("/api/v1/requests/some-id?bodies=true", ["bodies"]),
])
def test_unknown_query_parameters_are_a_400_naming_them(gateway, path, names):
    status, payload = gateway.api(path)
    assert status == 400, payload
    assert payload["error"]["code"] == "unknown_parameter"
    for name in names:
        assert name in payload["error"]["message"]


def test_property_filters_are_capped_with_a_clear_400(gateway):
    twenty = "&".join(f"property.p{i}=v" for i in range(20))
    status, payload = gateway.api(f"/api/v1/metrics?group_by=model&{twenty}")
    assert status == 200, payload
    for count in (21, 300, 1000):
        many = "&".join(f"property.p{i}=v" for i in range(count))
        started = time.monotonic()
        status, payload = gateway.api(f"/api/v1/requests?{many}")
        assert status == 400, payload
        assert payload["error"]["code"] == "too_many_filters"
        assert time.monotonic() - started < 5  # refused before any SQL runs
    status, payload = gateway.api("/api/v1/requests?" + "&".join(["model=a"] * 60))
    assert status == 400 and payload["error"]["code"] == "too_many_filters"


def test_a_page_of_bodies_is_bounded_and_paging_continues(gateway):
    org = "bodies-" + uuid.uuid4().hex[:8]
    key = org_key(gateway, org)
    big = client(gateway, key)
    ids = []
    for i in range(12):  # ~0.9 MB each: about 11 MB of bodies in all
        raw = big.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"{i} " + "x" * 900_000}])
        ids.append(raw.headers["helicone-id"])
    for rid in ids:
        gateway.record(rid, key=key)
    seen, pages, cursor = [], 0, None
    while True:
        query = "/api/v1/requests?bodies=true&limit=1000"
        status, body = gateway.api(query + (f"&cursor={cursor}" if cursor else ""), key=key)
        assert status == 200, body
        pages += 1
        size = sum(len(json.dumps(r["request"])) + len(json.dumps(r["response"]))
                   for r in body["data"])
        assert body["data"] and size <= 8 * 1024 * 1024 + 1024 * 1024
        assert all(r["request"] is not None for r in body["data"])
        seen += [r["id"] for r in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages >= 2
    assert sorted(seen) == sorted(ids)


def test_property_rows_of_another_organization_never_join(gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "mine"}],
        extra_headers={"Helicone-User-Id": f"owner-{tag}"})
    rid = raw.headers["helicone-id"]
    gateway.record(rid)
    # Another organization's record with the same id (ids are unique per organization)
    # carries a property this one does not have.
    execute_sql(gateway.database_url, "INSERT INTO request_properties"
                " (request_id, organization, name, value) VALUES (?, ?, ?, ?)",
                (rid, "intruder-" + tag, "team", "their-secret"))
    status, body = gateway.api(f"/api/v1/metrics?group_by=property.team&user_id=owner-{tag}")
    assert status == 200, body
    assert [g["key"] for g in body["data"]] == [None]
    status, body = gateway.api(f"/api/v1/requests?property.team=their-secret"
                               f"&user_id=owner-{tag}")
    assert status == 200 and body["data"] == []


def test_user_and_session_ids_holding_a_slash_are_addressable(gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    user, session = f"team/{tag}/alice", f"runs/{tag}"
    for _ in range(2):
        raw = openai_client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "slash"}],
            extra_headers={"Helicone-User-Id": user, "Helicone-Session-Id": session,
                           "Helicone-Session-Path": "/step"})
        gateway.record(raw.headers["helicone-id"])
    for path in (f"/api/v1/users/{user}", f"/api/v1/users/{user.replace('/', '%2F')}"):
        status, body = gateway.api(path)
        assert status == 200, (path, body)
        assert body["user_id"] == user and body["requests"] == 2
    status, body = gateway.api(f"/api/v1/sessions/{session}")
    assert status == 200 and body["session_id"] == session and body["requests"] == 2
    assert gateway.api(f"/api/v1/users/team/{tag}")[0] == 404  # a prefix is another id
    status, body = gateway.api(f"/api/v1/sessions?user_id={user.replace('/', '%2F')}")
    assert status == 200 and body["next_cursor"] is None
    assert [(s["session_id"], s["requests"]) for s in body["data"]] == [(session, 2)]


def test_routes_give_404_and_405_with_allow(gateway):
    req = urllib.request.Request(gateway.url + "/api/v1/metrics", method="DELETE",
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("expected 405")
    except urllib.error.HTTPError as err:
        assert err.code == 405 and err.headers["allow"] == "GET"
        assert json.loads(err.read())["error"]["code"] == "method_not_allowed"
    status, body = gateway.api("/v1/request/some-id/feedback")  # GET on a POST route
    assert status == 405
    assert gateway.api("/api/v1/nothing-here")[0] == 404
    assert gateway.api("/api/v1/users/")[0] == 404


@pytest.fixture(scope="module")
def slow_query_gateway(upstream, database_url, tmp_path_factory):
    """A gateway whose analytics queries may run 1 ms, over 20,000 stored records."""
    workdir = tmp_path_factory.mktemp("slowq")
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{workdir / 'slow.db'}"
        drop = None
    else:
        POSTGRES_URL = os.environ["HELIOGRAPH_TEST_POSTGRES_URL"]
        from servers import postgres_database
        url, drop = postgres_database(POSTGRES_URL)
    gw = Gateway(workdir, upstream.url, url, extra_config="[analytics]\nquery_timeout_s = 0.001\n")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    insert_records(url, [stored_record(f"slow-{i}", "default",
                                       iso(start + dt.timedelta(seconds=i)),
                                       request={"text": "lorem ipsum " * 80})
                         for i in range(20_000)])
    yield gw
    gw.stop()
    if drop:
        drop()


def test_a_query_past_its_deadline_is_a_504_not_a_hang(slow_query_gateway):
    gw = slow_query_gateway
    started = time.monotonic()
    # (A text search is no longer slow: it reads an index. A model no record has is: the
    # listing reads every record of the organization to find none.)
    status, body = gw.api("/api/v1/requests?model=no-such-model")
    assert status == 504, body
    assert body["error"]["code"] == "query_timeout"
    assert "query_timeout_s" in body["error"]["message"]
    assert time.monotonic() - started < 10
    assert "internal error" not in gw.log_text()
    # The gateway goes on serving, proxy and analytics threads alike.
    answer = client(gw).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "still there?"}])
    assert answer.choices[0].message.content
    # A report with a comparison filter, which rollups do not keep, is summed over the
    # raw rows and runs out of time the same way.
    assert gw.api("/api/v1/metrics?group_by=day&latency_gt=0")[0] == 504


def test_heavy_reports_do_not_stall_proxied_requests(gateway):
    org = "heavy-" + uuid.uuid4().hex[:8]
    key = org_key(gateway, org)
    now = dt.datetime.now(dt.UTC)
    insert_records(gateway.database_url, [
        stored_record(f"{org}-{i}", org, iso(now - dt.timedelta(minutes=13 * i)),
                      user_id=f"u{i % 50}", properties={"workflow": f"w{i % 7}"},
                      request={"text": "history " * 40})
        for i in range(4000)])  # ~36 days of records
    since = iso(now - dt.timedelta(days=30))
    reports = [f"/api/v1/metrics?group_by=day&since={since}",
               f"/api/v1/metrics?group_by=property.workflow&since={since}",
               f"/api/v1/users?since={since}",
               f"/api/v1/requests?q=history&since={since}&limit=1000"]
    stop = time.monotonic() + 8

    def hammer(path):
        statuses = []
        while time.monotonic() < stop:
            statuses.append(gateway.api(path, key=key)[0])
        return statuses

    chat = client(gateway)
    chat.chat.completions.create(model="gpt-4o-mini",
                                 messages=[{"role": "user", "content": "warm up"}])
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        running = [pool.submit(hammer, reports[i % len(reports)]) for i in range(12)]
        time.sleep(0.5)
        latencies = []
        while time.monotonic() < stop - 0.5:
            started = time.monotonic()
            # With the cache on, every call also reads and writes the shared state in
            # the database, on the proxy's own threads.
            answer = chat.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"prompt {len(latencies)}"}],
                extra_headers={"Helicone-Cache-Enabled": "true"})
            latencies.append(time.monotonic() - started)
            assert answer.choices[0].message.content
        statuses = [s for future in running for s in future.result()]
    assert statuses and set(statuses) <= {200, 503}, set(statuses)
    assert statuses.count(200) >= 12
    # Generous: a 2-core CI machine shared with other jobs.
    # Measured: median 0.07 s (SQLite), 0.04 s (PostgreSQL); 0.5 s and 1.2 s when reports
    # ran on the threads and connections the proxy uses.
    assert statistics.median(latencies) < 0.4, latencies
    assert max(latencies) < 3.0, latencies
