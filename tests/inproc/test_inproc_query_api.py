"""The query API reading back what the in-process gateway logged (through its journal and
writer), filtered, paginated and aggregated, scoped to the caller's organization."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from harness import create_key

pytestmark = pytest.mark.anyio


async def tagged_calls(inproc, tag: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        raw = await inproc.openai().chat.completions.with_raw_response.create(
            model="gpt-4o-mini" if i % 2 == 0 else "gpt-4o",
            messages=[{"role": "user", "content": f"query api {tag} {i}"}],
            extra_headers={"Helicone-Property-Tag": tag, "Helicone-User-Id": f"user-{tag}",
                           "Helicone-Session-Id": f"session-{tag}"})
        ids.append(raw.headers["helicone-id"])
    for request_id in ids:
        await inproc.record(request_id)
    return ids


async def test_list_filter_and_paginate(inproc):
    tag = uuid.uuid4().hex[:8]
    ids = await tagged_calls(inproc, tag, 5)
    status, body = await inproc.api(f"/api/v1/requests?property.Tag={tag}&limit=2")
    assert status == 200 and len(body["data"]) == 2 and body["next_cursor"]
    seen = [r["id"] for r in body["data"]]
    while body["next_cursor"]:
        status, body = await inproc.api(
            f"/api/v1/requests?property.tag={tag}&limit=2&cursor={body['next_cursor']}")
        seen += [r["id"] for r in body["data"]]
    assert sorted(seen) == sorted(ids)
    status, body = await inproc.api(f"/api/v1/requests?property.tag={tag}&model=gpt-4o")
    assert {r["id"] for r in body["data"]} == {ids[1], ids[3]}
    status, body = await inproc.api(f"/api/v1/requests?user_id=user-{tag}&status=200")
    assert len(body["data"]) == 5
    # Text search runs behind the writer (the search-index job): found within seconds.
    deadline = time.monotonic() + 10
    while not (body := (await inproc.api(f"/api/v1/requests?q=query%20api%20{tag}%203"))[1]
               )["data"]:
        assert time.monotonic() < deadline, "never indexed"
        await asyncio.sleep(0.1)
    assert [r["id"] for r in body["data"]] == [ids[3]]


async def test_metrics_users_and_sessions(inproc):
    tag = uuid.uuid4().hex[:8]
    await tagged_calls(inproc, tag, 4)
    status, body = await inproc.api(
        f"/api/v1/metrics?group_by=model&property.tag={tag}")
    assert status == 200 and body["total"]["requests"] == 4
    assert sum(group["requests"] for group in body["data"]) == 4
    status, user = await inproc.api(f"/api/v1/users/user-{tag}")
    assert status == 200 and user["requests"] == 4
    status, session = await inproc.api(f"/api/v1/sessions/session-{tag}")
    assert status == 200 and session["session_id"] == f"session-{tag}"
    assert session["requests"] == 4


async def test_another_organization_sees_none_of_these_records(inproc):
    tag = uuid.uuid4().hex[:8]
    [request_id] = await tagged_calls(inproc, tag, 1)
    other = create_key(inproc, "outsider", organization="other-" + tag)
    status, _ = await inproc.api(f"/api/v1/requests/{request_id}", key=other)
    assert status == 404
    status, body = await inproc.api(f"/api/v1/requests?property.tag={tag}", key=other)
    assert status == 200 and body["data"] == []


async def test_the_query_api_needs_a_gateway_key(inproc):
    status, body = await inproc.api("/api/v1/requests", key="sk-hg-not-a-real-key")
    assert status == 401 and body["error"]["type"] == "authentication_error"
