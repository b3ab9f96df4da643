"""Comparison filters on the query API (`latency_gt=100`, `_gte/_lt/_lte/_ne` on latency,
cost, tokens, status, created_at), and unknown filter parameters refused by name."""

from __future__ import annotations

import urllib.parse
import uuid

import openai
import pytest

pytestmark = pytest.mark.anyio


async def _calls(inproc, tag: str) -> dict[str, str]:
    """One quick call, one ~300 ms call and one failed (429) call, tagged."""
    ids = {}
    headers = {"Helicone-Property-Tag": tag}
    client = inproc.openai()
    for name, behavior in (("fast", "delay-0"), ("slow", "delay-300")):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"{name} {tag}"}],
            extra_headers={**headers, "x-fake-behavior": behavior})
        ids[name] = raw.headers["helicone-id"]
    with pytest.raises(openai.RateLimitError) as failed:
        await client.chat.completions.create(
            model="gpt-4o-mini-fake-status-429", messages=[{"role": "user", "content": tag}],
            extra_headers=headers)
    ids["failed"] = failed.value.response.headers["helicone-id"]
    for request_id in ids.values():
        await inproc.record(request_id)
    return ids


async def _ids(inproc, query: str) -> set[str]:
    status, body = await inproc.api(f"/api/v1/requests?{query}")
    assert status == 200, body
    return {record["id"] for record in body["data"]}


async def test_comparisons_select_the_rows_they_say(inproc):
    tag = uuid.uuid4().hex[:8]
    ids = await _calls(inproc, tag)
    scope = f"property.tag={tag}"
    assert await _ids(inproc, f"{scope}&latency_gt=250") == {ids["slow"]}
    assert await _ids(inproc, f"{scope}&latency_lte=250") == {ids["fast"], ids["failed"]}
    assert await _ids(inproc, f"{scope}&status_ne=200") == {ids["failed"]}
    assert await _ids(inproc, f"{scope}&status_gte=400&status_lt=500") == {ids["failed"]}
    assert await _ids(inproc, f"{scope}&tokens_gt=0") == {ids["fast"], ids["slow"]}
    assert await _ids(inproc, f"{scope}&cost_gt=0") == {ids["fast"], ids["slow"]}
    # ne keeps records with no value: the failed call has no cost at all.
    assert await _ids(inproc, f"{scope}&cost_ne=0") == set(ids.values())
    slow = await inproc.record(ids["slow"])
    moment = urllib.parse.quote(slow["created_at"])
    assert await _ids(inproc, f"{scope}&created_at_gte={moment}") >= {ids["slow"]}
    assert ids["fast"] not in await _ids(inproc, f"{scope}&created_at_gt={moment}")
    # The metrics and users endpoints take the same comparisons.
    status, body = await inproc.api(f"/api/v1/metrics?group_by=model&{scope}&latency_gt=250")
    assert status == 200 and body["total"]["requests"] == 1


async def test_bad_and_unknown_comparisons_are_400s_naming_them(inproc):
    status, body = await inproc.api("/api/v1/requests?latency_gt=fast")
    assert status == 400 and "latency_gt" in body["error"]["message"]
    status, body = await inproc.api("/api/v1/requests?created_at_lt=yesterday")
    assert status == 400 and "created_at" in body["error"]["message"]
    status, body = await inproc.api("/api/v1/requests?latency_between=1&model_gt=a")
    assert status == 400
    assert "latency_between" in body["error"]["message"]
    assert "model_gt" in body["error"]["message"]
