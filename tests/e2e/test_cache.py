"""Helicone-Cache-* through the real two-worker gateway, on the embedded store and Redis."""

import time
import uuid

import openai
import pytest


def ask(client, content, model="gpt-4o-mini", headers=None, **kwargs):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}],
        extra_headers={"Helicone-Cache-Enabled": "true", **(headers or {})}, **kwargs)


def ask_until_hit(client, content, timeout=5.0, **kwargs):
    """The cache is written after the answer is sent: poll until the entry is there."""
    deadline = time.monotonic() + timeout
    while True:
        raw = ask(client, content, **kwargs)
        if raw.headers.get("helicone-cache") == "HIT" or time.monotonic() > deadline:
            return raw
        time.sleep(0.1)


def test_same_request_hits_with_zero_cost_and_saved_cost(state_gateway, state_client):
    content = "cache me " + uuid.uuid4().hex
    first = ask(state_client, content)
    assert first.headers["helicone-cache"] == "MISS"
    miss = state_gateway.record(first.headers["helicone-id"])
    assert miss["cache"] == "miss" and miss["cost_usd"] > 0
    second = ask_until_hit(state_client, content)
    assert second.headers["helicone-cache"] == "HIT"
    assert second.headers["helicone-cache-bucket-idx"] == "0"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    hit = state_gateway.record(second.headers["helicone-id"])
    assert hit["cache"] == "hit" and hit["cost_usd"] == 0
    assert hit["cost_saved_usd"] == pytest.approx(miss["cost_usd"])
    assert hit["attempts"] == [] and hit["status"] == 200
    assert hit["prompt_tokens"] == miss["prompt_tokens"]
    # Both name the entry (a hash of its key, whatever holds it: SQL or Redis state).
    assert hit["cache_entry"] == miss["cache_entry"]
    assert len(hit["cache_entry"]) == 16 and int(hit["cache_entry"], 16) >= 0
    status, metrics = state_gateway.api("/api/v1/metrics?group_by=model&cache=hit")
    assert status == 200 and metrics["total"]["cache_hits"] >= 1


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"},
    {"temperature": 0.3},
    {"max_tokens": 7},
])
def test_any_difference_misses(state_gateway, state_client, change):
    content = "differ " + uuid.uuid4().hex
    ask_until_hit(state_client, content, temperature=1.0)
    assert ask_until_hit(state_client, content, temperature=1.0).headers["helicone-cache"] == "HIT"
    kwargs = {"temperature": 1.0, **change}
    assert ask(state_client, content, **kwargs).headers["helicone-cache"] == "MISS"


def test_expired_ttl_misses(state_gateway, state_client):
    content = "ttl " + uuid.uuid4().hex
    headers = {"Cache-Control": "max-age=1"}
    assert ask_until_hit(state_client, content, headers=headers).headers["helicone-cache"] == "HIT"
    time.sleep(1.3)
    assert ask(state_client, content, headers=headers).headers["helicone-cache"] == "MISS"


def test_streams_are_replayed_as_streams(state_gateway, state_client):
    content = "stream cache " + uuid.uuid4().hex

    def streamed():
        raw = ask(state_client, content, stream=True)
        chunks = list(raw.parse())
        return raw, chunks

    first, first_chunks = streamed()
    assert first.headers["helicone-cache"] == "MISS"
    deadline = time.monotonic() + 5
    while True:
        second, chunks = streamed()
        if second.headers["helicone-cache"] == "HIT" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert second.headers["helicone-cache"] == "HIT"
    assert second.headers["content-type"].startswith("text/event-stream")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: " + content and len(chunks) == len(first_chunks) > 2
    assert all(c.usage is None for c in chunks)
    rec = state_gateway.record(second.headers["helicone-id"])
    assert rec["cache"] == "hit" and rec["ttft_ms"] is not None
    assert rec["response"]["choices"][0]["message"]["content"] == text


def test_buckets_fill_then_serve_from_them(state_gateway, state_client):
    content = "bucket " + uuid.uuid4().hex
    headers = {"Helicone-Cache-Bucket-Max-Size": "2"}
    statuses = []
    deadline = time.monotonic() + 5
    while "HIT" not in statuses and time.monotonic() < deadline:
        statuses.append(ask(state_client, content, headers=headers).headers["helicone-cache"])
        time.sleep(0.15)
    assert statuses[:2] == ["MISS", "MISS"] and statuses[-1] == "HIT"
    indexes = {ask(state_client, content, headers=headers).headers["helicone-cache-bucket-idx"]
               for _ in range(12)}
    assert indexes <= {"0", "1"} and indexes


def test_bucket_size_over_20_is_a_400(state_client):
    with pytest.raises(openai.BadRequestError):
        ask(state_client, "x", headers={"Helicone-Cache-Bucket-Max-Size": "21"})


def test_seed_separates_entries(state_gateway, state_client):
    content = "seed " + uuid.uuid4().hex
    hit = ask_until_hit(state_client, content, headers={"Helicone-Cache-Seed": "a"})
    assert hit.headers["helicone-cache"] == "HIT"
    assert ask(state_client, content, headers={"Helicone-Cache-Seed": "b"}) \
        .headers["helicone-cache"] == "MISS"


@pytest.mark.parametrize("ignore", ['user', '"user","metadata"'])
def test_ignore_keys(state_gateway, state_client, ignore):
    content = "ignore " + uuid.uuid4().hex
    headers = {"Helicone-Cache-Ignore-Keys": ignore}
    ask_until_hit(state_client, content, headers=headers, user="alice")
    assert ask(state_client, content, headers=headers, user="bob") \
        .headers["helicone-cache"] == "HIT"
    assert ask(state_client, content, user="bob").headers["helicone-cache"] == "MISS"


def test_errors_are_not_cached(state_gateway, state_client):
    content = "fail " + uuid.uuid4().hex
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as info:
            ask(state_client, content, model="gpt-4o-mini-fake-status-500")
        assert info.value.response.headers["helicone-cache"] == "MISS"
        time.sleep(0.2)
