"""The Rate limits page's data and text-search listings
through a real gateway, on a log filled by `heliograph demo` (SQLite and PostgreSQL),
against answers worked out from the raw rows: the reader with rollups off, and the
records' own bodies for search."""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import re
import time
import urllib.parse
import urllib.request

import orjson
from servers import ADMIN_KEY, Gateway
from test_demo import all_requests, fresh_database, run_demo  # noqa: F401 (a fixture)

from heliograph.analytics import open_analytics, summaries
from heliograph.analytics.filters import RequestFilter
from heliograph.store import open_store
from heliograph.store.search import words

STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


def search_indexed(database_url: str) -> bool:
    store = open_store(database_url)
    try:
        with store.transaction() as cur:
            if store.dialect.name == "sqlite":
                done, last = store.execute(cur, "SELECT (SELECT indexed_seq FROM"
                                                " search_progress), MAX(seq) FROM"
                                                " request_bodies").fetchone()
                return done == last
            return store.execute(cur, "SELECT COUNT(*) FROM search_pending").fetchone()[0] == 0
    finally:
        store.close()


def signed_in(origin: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = opener.open(origin + "/dashboard/login").read().decode()
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"key": ADMIN_KEY, "login_token": token}).encode()
    opener.open(origin + "/dashboard/login", data=data).read()
    return opener


PAGE = 37


def paged(gw, query: str) -> list[str]:
    status, body = gw.api(f"/api/v1/requests?limit={PAGE}&{query}")
    assert status == 200, body
    ids = [r["id"] for r in body["data"]]
    while body["next_cursor"]:
        status, body = gw.api(f"/api/v1/requests?limit={PAGE}&{query}&cursor={body['next_cursor']}")
        ids += [r["id"] for r in body["data"]]
    return ids


def test_rate_limits_and_search_equal_raw_rows(tmp_path, upstream,
                                                     fresh_database):  # noqa: F811
    done = run_demo(tmp_path, fresh_database, "--records", "3000", "--days", "3",
                    "--seed", "16")
    assert done.returncode == 0, done.stderr
    (tmp_path / "gw").mkdir()
    gw = Gateway(tmp_path / "gw", upstream.url, fresh_database)
    raw = open_analytics(fresh_database)
    raw.use_rollups = False
    try:
        records = all_requests(gw, "&bodies=true")
        org = records[0]["organization"]
        hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        windows = [(None, None), ((hour - dt.timedelta(days=2)).strftime(STORED), None),
                   ((hour - dt.timedelta(hours=40, minutes=17)).strftime(STORED),
                    (hour - dt.timedelta(hours=3, minutes=41)).strftime(STORED))]

        # /api/v1/ratelimits (from the rate-limit rollup) = the raw rows' answer.
        for since, until in windows:
            query = urllib.parse.urlencode({k: v for k, v in (("since", since),
                                                              ("until", until)) if v})
            status, got = gw.api(f"/api/v1/ratelimits?{query}")
            assert status == 200, got
            want = json.loads(json.dumps(raw.ratelimits(org, RequestFilter(since=since,
                                                                           until=until))))
            assert got == want, (since, until)
        assert sum(g["requests_429"] for g in got["data"]) > 0
        assert any(g["latest"] for g in got["data"])

        # The Rate limits page shows the raw rows' numbers.
        week = RequestFilter(since=(hour - dt.timedelta(days=7)).strftime(STORED))
        opener = signed_in(gw.url)
        page = opener.open(gw.url + "/dashboard/ratelimits?period=7d").read().decode()
        events = summaries.rate_limit_events(raw, org, week)
        assert events["total"]["absorbed_429"] > 0
        for count in events["total"].values():
            assert f">{count:,}<" in page or f">{count}<" in page, count

        # Text search: every match newest first, as the bodies say.
        deadline = time.monotonic() + 60
        while not search_indexed(fresh_database):
            assert time.monotonic() < deadline, "the search index did not catch up"
            time.sleep(0.2)
        model = records[0]["model"]
        by_time = sorted(records, key=lambda r: (r["created_at"], r["id"]), reverse=True)
        text = {r["id"]: set(words(orjson.dumps(r["request"]).decode() + " "
                                   + orjson.dumps(r["response"]).decode()))
                for r in records}
        for q in ("refund", "the", "hooli invoice", "nosuchwordanywhere"):
            for since, _until in windows[:2]:
                for extra in ({}, {"model": model}):
                    want = [r["id"] for r in by_time if set(q.split()) <= text[r["id"]]
                            and (not since or r["created_at"] >= since)
                            and all(r[k] == v for k, v in extra.items())]
                    query = urllib.parse.urlencode({"q": q, **extra,
                                                    **({"since": since} if since else {})})
                    assert paged(gw, query) == want, query
                    if q == "the":   # a common word: read over several pages
                        assert len(want) > PAGE
    finally:
        raw.close()
        gw.stop()
