"""The log at scale through the real gateway, on each store: text search finds a proxied
call's words once the background indexer has run, the export streams every filtered
record as JSON lines or CSV, and retention deletes old records and old bodies on its own."""

import csv
import datetime as dt
import io
import json
import os
import time
import urllib.request
import uuid

import openai
import pytest
from servers import ADMIN_KEY, Gateway

from heliograph.records import RECORD_KEYS
from heliograph.store import open_store


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stored_record(request_id, at, **fields):
    rec = dict.fromkeys(RECORD_KEYS)
    rec.update(id=request_id, organization="default", created_at=at,
               path="/v1/chat/completions", status=200, properties={}, attempts=[],
               scores={}, cost_known=True, cost_usd=0.001, model="gpt-4o-mini",
               provider="openai", prompt_tokens=10, completion_tokens=5, latency_ms=120.0)
    rec.update(fields)
    return rec


NOW = dt.datetime.now(dt.UTC)
OLD = [stored_record(f"old-{i}", iso(NOW - dt.timedelta(days=40, minutes=i)),
                     request={"text": "forgotten"}) for i in range(5)]
MIDDLE = stored_record("middle", iso(NOW - dt.timedelta(days=10)), user_id="exporter",
                       request={"text": "bodies go, metrics stay"},
                       response={"text": "answer"}, properties={"team": "a,b"})
RECENT = [stored_record(f"recent-{i}", iso(NOW - dt.timedelta(minutes=i + 1)),
                        user_id="exporter", request={"text": f"line one\nrecent {i}"},
                        response={"quote": 'say "hi"'}) for i in range(1200)]


@pytest.fixture(scope="module")
def scale_gateway(upstream, database_url, tmp_path_factory):
    """A gateway keeping records 30 days and bodies 7, over a database that holds older
    ones when it starts."""
    workdir = tmp_path_factory.mktemp("scale")
    drop = None
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{workdir / 'scale.db'}"
    else:
        from servers import postgres_database
        url, drop = postgres_database(os.environ["HELIOGRAPH_TEST_POSTGRES_URL"])
    store = open_store(url)
    store.insert_records([*OLD, MIDDLE, *RECENT])
    store.close()
    gw = Gateway(workdir, upstream.url, url,
                 extra_config="[retention]\ndays = 30\nbodies_days = 7\n")
    yield gw
    gw.stop()
    if drop:
        drop()


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def download(gw, path):
    req = urllib.request.Request(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, resp.headers, resp.read()


def test_retention_deletes_old_records_and_old_bodies(scale_gateway):
    gw = scale_gateway
    wait_for(lambda: gw.api("/api/v1/requests/old-0")[0] == 404)
    assert all(gw.api(f"/api/v1/requests/old-{i}")[0] == 404 for i in range(5))
    middle = wait_for(lambda: (r := gw.api("/api/v1/requests/middle")[1])["request"] is None
                      and r)
    assert middle["response"] is None
    assert middle["cost_usd"] == 0.001 and middle["properties"] == {"team": "a,b"}
    assert gw.api("/api/v1/requests/recent-0")[1]["request"] == {"text": "line one\nrecent 0"}


def test_search_finds_a_proxied_call_once_indexed(scale_gateway):
    gw = scale_gateway
    word = "zq" + uuid.uuid4().hex[:10]
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"find\n{word} please"}])
    request_id = raw.headers["helicone-id"]
    found = wait_for(lambda: gw.api(f"/api/v1/requests?q={word}%20please")[1]["data"])
    assert [r["id"] for r in found] == [request_id]
    assert gw.api(f"/api/v1/requests?q={word}%20absentword")[1]["data"] == []  # every word
    assert gw.api("/api/v1/requests?q=nosuchwordanywhere")[1]["data"] == []
    assert [r["id"] for r in wait_for(
        lambda: gw.api("/api/v1/requests?q=recent%207&user_id=exporter")[1]["data"])
    ] == ["recent-7"]


def test_export_streams_every_filtered_record_as_jsonl(scale_gateway):
    gw = scale_gateway
    status, headers, body = download(gw, "/api/v1/requests/export?user_id=exporter")
    assert status == 200 and headers["content-type"] == "application/x-ndjson"
    assert headers.get("content-length") is None  # streamed
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["id"] for r in lines] == [f"recent-{i}" for i in range(1200)] + ["middle"]
    assert set(lines[0]) == set(RECORD_KEYS)
    assert lines[7]["request"] == {"text": "line one\nrecent 7"}
    assert lines[7]["response"] == {"quote": 'say "hi"'}


def test_export_as_csv_with_the_listing_filters(scale_gateway):
    gw = scale_gateway
    since = iso(NOW - dt.timedelta(minutes=3, seconds=30))
    status, headers, body = download(
        gw, f"/api/v1/requests/export?format=csv&user_id=exporter&since={since}")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["id"] for r in rows] == ["recent-0", "recent-1", "recent-2"]
    assert json.loads(rows[1]["request"]) == {"text": "line one\nrecent 1"}
    assert json.loads(rows[1]["response"]) == {"quote": 'say "hi"'}
    assert rows[0]["cost_known"] == "true" and rows[0]["error"] == ""


@pytest.mark.parametrize("query, message", [
    ("format=xml", "format must be"),
    ("colour=red", "unknown query parameter"),
    ("since=yesterday", "ISO 8601"),
])
def test_a_bad_export_is_a_json_400(scale_gateway, query, message):
    status, body = scale_gateway.api(f"/api/v1/requests/export?{query}")
    assert status == 400 and message in body["error"]["message"], body


def test_export_needs_a_key(scale_gateway):
    status, body = scale_gateway.api("/api/v1/requests/export", key="sk-wrong")
    assert status == 401 and body["error"]["type"]
