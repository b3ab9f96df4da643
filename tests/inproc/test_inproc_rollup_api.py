"""The endpoints issue #16 adds or moves onto rollups, over what the in-process gateway
logged through its journal and writer: /api/v1/sessions (newest first, keyset paging),
/api/v1/properties, /api/v1/overview, and /api/v1/metrics grouped by user and property."""

from __future__ import annotations

import datetime as _dt
import uuid

import pytest
from harness import create_key

pytestmark = pytest.mark.anyio


async def session_calls(inproc, tag: str, sessions: int, per_session: int) -> list[str]:
    ids = []
    for s in range(sessions):
        for i in range(per_session):
            raw = await inproc.openai().chat.completions.with_raw_response.create(
                model="gpt-4o-mini" if i % 2 == 0 else "gpt-4o",
                messages=[{"role": "user", "content": f"rollup api {tag} {s} {i}"}],
                extra_headers={"Helicone-Property-Tag": tag,
                               "Helicone-Property-Step": f"step-{i}",
                               "Helicone-User-Id": f"user-{tag}",
                               "Helicone-Session-Id": f"{tag}-s{s}",
                               "Helicone-Session-Name": f"trip {s}",
                               "Helicone-Session-Path": f"/step{i}"})
            ids.append(raw.headers["helicone-id"])
    for request_id in ids:
        await inproc.record(request_id)
    return ids


async def test_sessions_newest_first_with_totals_and_keyset_paging(inproc):
    tag = uuid.uuid4().hex[:8]
    await session_calls(inproc, tag, sessions=3, per_session=2)
    # Unfiltered: from the session rollup. The three newest sessions are ours.
    status, body = await inproc.api("/api/v1/sessions?limit=2")
    assert status == 200 and len(body["data"]) == 2 and body["next_cursor"]
    assert [s["session_id"] for s in body["data"]] == [f"{tag}-s2", f"{tag}-s1"]
    newest = body["data"][0]
    assert (newest["name"], newest["requests"]) == ("trip 2", 2)
    assert newest["cost_usd"] > 0 and newest["first_at"] <= newest["last_at"]
    status, more = await inproc.api(f"/api/v1/sessions?limit=2&cursor={body['next_cursor']}")
    assert status == 200 and more["data"][0]["session_id"] == f"{tag}-s0"
    # Filtered: from the raw rows, summed by SQL, paged the same way.
    status, body = await inproc.api(f"/api/v1/sessions?property.tag={tag}&model=gpt-4o"
                                    "&limit=2")
    assert [(s["session_id"], s["requests"]) for s in body["data"]] == [
        (f"{tag}-s2", 1), (f"{tag}-s1", 1)]
    status, last = await inproc.api(f"/api/v1/sessions?property.tag={tag}&model=gpt-4o"
                                    f"&limit=2&cursor={body['next_cursor']}")
    assert [s["session_id"] for s in last["data"]] == [f"{tag}-s0"]
    assert last["next_cursor"] is None


async def test_properties_keys_and_values(inproc):
    tag = uuid.uuid4().hex[:8]
    await session_calls(inproc, tag, sessions=2, per_session=3)
    status, body = await inproc.api("/api/v1/properties")
    assert status == 200
    names = {p["name"]: p for p in body["data"]}
    assert {"tag", "step"} <= set(names)
    assert names["tag"]["requests"] >= 6
    status, body = await inproc.api("/api/v1/properties?key=Step&property.tag=" + tag)
    assert status == 200
    (step,) = body["data"]
    assert step["name"] == "step" and step["distinct_values"] == 3
    assert [(v["value"], v["requests"]) for v in step["values"]] == [
        ("step-0", 2), ("step-1", 2), ("step-2", 2)]
    assert all(v["cost_usd"] > 0 for v in step["values"])
    status, body = await inproc.api(f"/api/v1/properties?key=tag&limit=1&property.tag={tag}")
    assert body["data"][0]["values"] == [
        {"value": tag, "requests": 6, "cost_usd": pytest.approx(body["data"][0]["cost_usd"])}]


async def test_metrics_by_user_property_and_the_overview(inproc):
    tag = uuid.uuid4().hex[:8]
    await session_calls(inproc, tag, sessions=1, per_session=4)
    status, body = await inproc.api("/api/v1/metrics?group_by=user_id")
    assert status == 200
    ours = [g for g in body["data"] if g["key"] == f"user-{tag}"]
    assert ours[0]["requests"] == 4 and ours[0]["p95_latency_ms"] > 0
    assert body["total"]["requests"] == sum(g["requests"] for g in body["data"])
    status, body = await inproc.api(f"/api/v1/metrics?group_by=property.step&property.tag={tag}")
    assert [(g["key"], g["requests"]) for g in body["data"]] == [
        ("step-0", 1), ("step-1", 1), ("step-2", 1), ("step-3", 1)]
    # A filter no rollup keeps (a comparison) is answered from the raw rows, not ignored.
    for group_by in ("user_id", "model", "day", "property.step"):
        status, body = await inproc.api(f"/api/v1/metrics?group_by={group_by}"
                                        "&latency_gt=1000000000")
        assert status == 200 and body["data"] == [] and body["total"]["requests"] == 0
    status, body = await inproc.api(f"/api/v1/metrics?group_by=user_id&latency_gte=0"
                                    f"&property.tag={tag}")
    assert [(g["key"], g["requests"]) for g in body["data"]] == [(f"user-{tag}", 4)]
    status, body = await inproc.api(f"/api/v1/overview?property.tag={tag}")
    assert status == 200
    assert body["total"]["requests"] == 4
    assert body["total"]["cost_per_request_usd"] == pytest.approx(
        body["total"]["cost_usd"] / 4)
    assert sum(d["requests"] for d in body["by_day"]) == 4
    assert {m["key"] for m in body["by_model"]} == {"gpt-4o-mini", "gpt-4o"}


async def test_another_organization_sees_none_of_it(inproc):
    tag = uuid.uuid4().hex[:8]
    await session_calls(inproc, tag, sessions=1, per_session=1)
    other = create_key(inproc, "outsider", organization="other-" + tag)
    for path in ("/api/v1/sessions", "/api/v1/properties", "/api/v1/users"):
        status, body = await inproc.api(path, key=other)
        assert status == 200 and body["data"] == [], path
    status, body = await inproc.api("/api/v1/overview", key=other)
    assert status == 200 and body["total"]["requests"] == 0 and body["by_day"] == []


@pytest.mark.parametrize("path, message", [
    ("/api/v1/properties?limit=0", "limit must be a positive integer"),
    ("/api/v1/properties?values=3", "unknown query parameter(s): values"),
    ("/api/v1/sessions?cursor=bm90LWEtY3Vyc29y", "invalid cursor"),
    ("/api/v1/overview?group_by=model", "unknown query parameter(s): group_by"),
    ("/api/v1/metrics?group_by=property.", "unknown group_by"),
])
async def test_bad_parameters_are_a_400(inproc, path, message):
    status, body = await inproc.api(path)
    assert status == 400 and message in body["error"]["message"], body


async def every_user(inproc, query: str) -> list[dict]:
    found, cursor = [], None
    while True:
        status, body = await inproc.api(f"/api/v1/users?{query}&limit=3"
                                        + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        assert len(body["data"]) <= 3
        found += body["data"]
        cursor = body["next_cursor"]
        if not cursor:
            return found


async def test_users_are_sorted_and_paged_the_same_from_rollups_and_raw_rows(inproc):
    tag = uuid.uuid4().hex[:8]
    ids = []
    for user, calls in (("a", 3), ("b", 2), ("c", 1)):
        for i in range(calls):
            raw = await inproc.openai().chat.completions.with_raw_response.create(
                model="gpt-4o" if i else "gpt-4o-mini",
                messages=[{"role": "user", "content": f"users {tag} {user} {i}"}],
                extra_headers={"Helicone-User-Id": f"{tag}-{user}",
                               "Helicone-Property-Tag": tag})
            ids.append(raw.headers["helicone-id"])
    for request_id in ids:
        await inproc.record(request_id)
    # Filtered by a property (raw rows): most requests first, a page at a time.
    status, body = await inproc.api(f"/api/v1/users?property.tag={tag}&limit=2")
    assert status == 200
    assert [(u["user_id"], u["requests"]) for u in body["data"]] == [
        (f"{tag}-a", 3), (f"{tag}-b", 2)]
    assert body["data"][0]["models"] == {"gpt-4o": 2, "gpt-4o-mini": 1}
    status, rest = await inproc.api(f"/api/v1/users?property.tag={tag}&limit=2"
                                    f"&cursor={body['next_cursor']}")
    assert [u["user_id"] for u in rest["data"]] == [f"{tag}-c"] and rest["next_cursor"] is None
    status, body = await inproc.api(f"/api/v1/users?property.tag={tag}&sort=user_id"
                                    "&order=desc")
    assert [u["user_id"] for u in body["data"]] == [f"{tag}-c", f"{tag}-b", f"{tag}-a"]
    # Every user of the last hours, every sort: the rollups' pages (user rollups by hour,
    # raw minutes at the edge) are the raw rows' (a comparison filter no rollup keeps
    # that every record passes).
    since = (_dt.datetime.now(_dt.UTC) - _dt.timedelta(hours=2, minutes=17)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    for sort in ("requests", "cost_usd", "avg_latency_ms", "last_seen", "user_id"):
        rolled = await every_user(inproc, f"since={since}&sort={sort}")
        raw = await every_user(inproc, f"since={since}&sort={sort}"
                                       "&created_at_gte=2000-01-01T00:00:00Z")
        assert [u["user_id"] for u in rolled] == [u["user_id"] for u in raw], sort
        assert {f"{tag}-a", f"{tag}-b", f"{tag}-c"} <= {u["user_id"] for u in rolled}
        for got, want in zip(rolled, raw):
            floats = {k: pytest.approx(want[k]) for k in ("cost_usd", "avg_latency_ms")
                      if want[k] is not None}
            assert got == {**want, **floats}


@pytest.mark.parametrize("query, message", [
    ("sort=nonsense", "sort must be one of"),
    ("order=up", "order must be 'asc' or 'desc'"),
    ("cursor=bm90LWEtY3Vyc29y", "invalid cursor"),
    ("limit=0", "limit must be a positive integer"),
])
async def test_bad_user_listing_parameters_are_a_400(inproc, query, message):
    status, body = await inproc.api(f"/api/v1/users?{query}")
    assert status == 400 and message in body["error"]["message"], body
