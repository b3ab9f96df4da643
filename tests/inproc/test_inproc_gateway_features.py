"""Helicone-* features through the in-process gateway: logged properties, user and
session; the response cache; retries and fallbacks over the fake's scripted faults;
rate-limit policies."""

from __future__ import annotations

import asyncio
import time
import uuid

import openai
import pytest

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "are you there"}]


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


async def chat(client, content="hi", model="gpt-4o-mini", headers=None, **kwargs):
    return await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}],
        extra_headers=headers or {}, **kwargs)


# -- Helicone headers ------------------------------------------------------------------

async def test_properties_user_and_session_are_logged(inproc):
    raw = await chat(inproc.openai(), headers={
        "Helicone-Property-Workflow": "triage", "Helicone-Property-Env": "prod",
        "Helicone-User-Id": "alice@example.com", "Helicone-Session-Id": "sess-1",
        "Helicone-Session-Path": "/plan/step1", "Helicone-Session-Name": "Planner"})
    rec = await inproc.record(raw.headers["helicone-id"])
    assert rec["properties"] == {"workflow": "triage", "env": "prod"}
    assert rec["user_id"] == "alice@example.com"
    assert (rec["session_id"], rec["session_path"], rec["session_name"]) == \
        ("sess-1", "/plan/step1", "Planner")


async def test_caller_chosen_request_id_names_the_record(inproc):
    request_id = str(uuid.uuid4())
    raw = await chat(inproc.openai(), headers={"Helicone-Request-Id": request_id})
    assert raw.headers["helicone-id"] == request_id
    assert (await inproc.record(request_id))["id"] == request_id


async def test_bad_helicone_header_is_a_400_that_never_reaches_the_provider(inproc,
                                                                             fake_provider):
    content = unique("never sent")
    with pytest.raises(openai.BadRequestError) as info:
        await chat(inproc.openai(), content, headers={"Helicone-Cache-Enabled": "maybe"})
    error = info.value.response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "helicone-cache-enabled" in error["message"].lower()
    assert not [r for r in fake_provider.requests() if content in str(r["body"])]


# -- cache -----------------------------------------------------------------------------

async def ask_until_hit(client, content, timeout=5.0, **kwargs):
    """The cache is written after the answer is sent: ask until the entry is there."""
    deadline = time.monotonic() + timeout
    while True:
        raw = await chat(client, content, headers={"Helicone-Cache-Enabled": "true"},
                         **kwargs)
        if raw.headers.get("helicone-cache") == "HIT" or time.monotonic() > deadline:
            return raw
        await asyncio.sleep(0.05)


async def test_cache_miss_then_hit_with_the_same_answer_at_no_cost(inproc):
    client, content = inproc.openai(), unique("cache me")
    first = await chat(client, content, headers={"Helicone-Cache-Enabled": "true"})
    assert first.headers["helicone-cache"] == "MISS"
    second = await ask_until_hit(client, content)
    assert second.headers["helicone-cache"] == "HIT"
    assert second.parse().choices[0].message.content == \
        first.parse().choices[0].message.content
    miss = await inproc.record(first.headers["helicone-id"])
    hit = await inproc.record(second.headers["helicone-id"])
    assert (miss["cache"], hit["cache"]) == ("miss", "hit")
    assert hit["cost_usd"] == 0 and hit["cost_saved_usd"] == pytest.approx(miss["cost_usd"])
    assert hit["attempts"] == []  # the provider was not asked
    # A different request body is a different entry.
    other = await chat(client, content, headers={"Helicone-Cache-Enabled": "true"},
                       temperature=0.3)
    assert other.headers["helicone-cache"] == "MISS"


async def test_a_cached_stream_replays_as_a_stream(inproc):
    client, content = inproc.openai(), unique("cache my stream")
    await ask_until_hit(client, content, stream=True)
    raw = await ask_until_hit(client, content, stream=True)
    assert raw.headers["helicone-cache"] == "HIT"
    assert raw.headers["content-type"].startswith("text/event-stream")
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse()
                    if c.choices])
    assert text == f"Echo: {content}"


# -- retries and fallbacks -------------------------------------------------------------

def retry_headers(**extra):
    return {"Helicone-Retry-Enabled": "true", "Helicone-Retry-Min-Timeout": "10",
            "Helicone-Retry-Max-Timeout": "50", "x-fake-counter-key": uuid.uuid4().hex,
            **extra}


async def test_429_then_200_is_retried_to_success(inproc):
    raw = await inproc.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini-fake-fail-then-ok-2", messages=MESSAGES,
        extra_headers=retry_headers())
    assert raw.parse().choices[0].message.content == "Echo: are you there"
    rec = await inproc.record(raw.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [429, 429, 200]


async def test_without_retries_the_429_is_the_answer(inproc):
    headers = retry_headers()
    del headers["Helicone-Retry-Enabled"]
    with pytest.raises(openai.RateLimitError) as info:
        await inproc.openai().chat.completions.create(
            model="gpt-4o-mini-fake-fail-then-ok-2", messages=MESSAGES,
            extra_headers=headers)
    rec = await inproc.record(info.value.response.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [429]


async def test_connection_errors_are_retried_then_a_502(inproc):
    with pytest.raises(openai.APIStatusError) as info:
        await inproc.openai().chat.completions.create(
            model="down-model", messages=MESSAGES,
            extra_headers={**retry_headers(), "Helicone-Retry-Num": "2"})
    assert info.value.status_code == 502
    assert info.value.response.json()["error"]["message"]
    rec = await inproc.record(info.value.response.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [502, 502, 502]


async def test_503_falls_back_to_the_next_model(inproc):
    raw = await inproc.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini-fake-status-503", messages=MESSAGES,
        extra_headers={"Helicone-Fallback-Model": "gpt-4o"})
    assert raw.parse().model == "gpt-4o"
    assert raw.headers["helicone-fallback-index"] == "1"
    assert raw.headers["helicone-model-used"] == "gpt-4o"
    rec = await inproc.record(raw.headers["helicone-id"])
    assert [(a["model"], a["status"]) for a in rec["attempts"]] == \
        [("gpt-4o-mini-fake-status-503", 503), ("gpt-4o", 200)]


async def test_comma_chain_in_the_model_crosses_providers(inproc):
    raw = await inproc.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-fake-status-500,groq/llama-3.1-8b-instant", messages=MESSAGES)
    assert raw.headers["helicone-model-used"] == "llama-3.1-8b-instant"
    rec = await inproc.record(raw.headers["helicone-id"])
    assert [a["provider"] for a in rec["attempts"]] == ["openai", "groq"]


async def test_a_400_does_not_fall_back_unless_listed_in_oncodes(inproc):
    client = inproc.openai()
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="gpt-4o-fake-status-400", messages=MESSAGES,
            extra_headers={"Helicone-Fallback-Model": "gpt-4o-mini"})
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-fake-status-400", messages=MESSAGES,
        extra_headers={"Helicone-Fallback-Model": "gpt-4o-mini",
                       "Helicone-Fallback-OnCodes": "400"})
    assert raw.headers["helicone-model-used"] == "gpt-4o-mini"


# -- rate-limit policies ---------------------------------------------------------------

async def limited_call(client, policy, user):
    try:
        raw = await chat(client, "limit me", headers={"Helicone-RateLimit-Policy": policy,
                                                      "Helicone-User-Id": user})
        return raw.http_response.status_code, raw.headers
    except openai.RateLimitError as err:
        return 429, err.response.headers


async def test_request_policy_lets_exactly_the_quota_through_per_user(inproc):
    client, user = inproc.openai(), "limited-" + uuid.uuid4().hex[:8]
    policy = "3;w=60;u=request;s=user"
    results = [await limited_call(client, policy, user) for _ in range(5)]
    assert [status for status, _ in results] == [200, 200, 200, 429, 429]
    assert results[0][1]["helicone-ratelimit-limit"] == "3"
    refused = results[3][1]
    assert refused["x-helicone-error"] == "rate_limited"
    assert refused["helicone-ratelimit-remaining"] == "0"
    rec = await inproc.record(refused["helicone-id"])
    assert rec["status"] == 429 and rec["attempts"] == []
    # Another user has a budget of their own.
    assert (await limited_call(client, policy, user + "-other"))[0] == 200


async def test_malformed_policy_is_a_400(inproc):
    with pytest.raises(openai.BadRequestError) as info:
        await chat(inproc.openai(), headers={"Helicone-RateLimit-Policy": "5;w=0"})
    assert info.value.response.json()["error"]["message"]
