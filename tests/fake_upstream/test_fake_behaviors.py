"""Each behaviour, chosen by header or model name, observed on the wire."""

import asyncio
import http.client
import json
import time
import urllib.error

import aiohttp
import openai
import pytest

from .conftest import call, chat_body, sse_events

CHAT = "/v1/chat/completions"


# -- auth and header echo ---------------------------------------------------------

def test_missing_authorization_is_401(server):
    r = call(server, CHAT, chat_body(), auth=None)
    assert r.status == 401
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and "API key" in err["message"]


def test_bad_key_is_401_invalid_api_key(server, client):
    r = call(server, CHAT, chat_body(), auth="Bearer sk-bad")
    assert r.status == 401
    assert r.json() == {"error": {"message": "Incorrect API key provided",
                                  "type": "invalid_request_error", "param": None,
                                  "code": "invalid_api_key"}}
    bad = openai.OpenAI(base_url=server.base_url, api_key="sk-bad", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_received_headers_are_echoed(server):
    r = call(server, CHAT, chat_body(), headers={"X-Custom-Thing": "1", "Helicone-Auth": "x"})
    assert r.headers["x-fake-received-authorization"] == "Bearer sk-test"
    names = r.headers["x-fake-received-headers"].split(",")
    assert {"x-custom-thing", "helicone-auth", "authorization", "content-type"} <= set(names)


# -- request log --------------------------------------------------------------------

def test_request_log_and_clear(server):
    assert call(server, "/_fake/requests", method="DELETE", auth=None).status == 200
    call(server, CHAT, chat_body("logged", stream=True, stream_options={"include_usage": True}),
         headers={"Helicone-Property-X": "y"})
    (rec,) = call(server, "/_fake/requests", auth=None).json()
    assert rec["method"] == "POST" and rec["path"] == CHAT
    assert rec["headers"]["helicone-property-x"] == "y"
    assert rec["body"]["stream_options"] == {"include_usage": True}
    assert server.requests() == [rec]
    call(server, "/v1/models")
    assert len(call(server, "/_fake/requests?limit=1", auth=None).json()) == 1
    server.clear_requests()
    assert call(server, "/_fake/requests", auth=None).json() == []


# -- status-<code> --------------------------------------------------------------------

def test_status_429_by_header(server):
    r = call(server, CHAT, chat_body(), behavior="status-429")
    assert r.status == 429
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
    assert r.headers["retry-after"] == "1" and r.headers["retry-after-ms"] == "1000"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-remaining-tokens"] == "0"


@pytest.mark.parametrize("status,type_", [(500, "server_error"), (503, "server_error"),
                                          (400, "invalid_request_error")])
def test_status_by_model_name(server, status, type_):
    r = call(server, CHAT, chat_body(model=f"gpt-4o-mini-fake-status-{status}"))
    assert r.status == status and r.json()["error"]["type"] == type_
    assert set(r.json()["error"]) >= {"message", "type", "code"}


def test_status_through_sdk(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-fake-status-429",
                                       messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-small", input="x",
                                 extra_headers={"x-fake-behavior": "status-502"})


def test_unknown_behavior_header_is_400(server):
    r = call(server, CHAT, chat_body(), behavior="status-42")
    assert r.status == 400 and "x-fake-behavior" in r.json()["error"]["message"]


# -- delay / stall --------------------------------------------------------------------

def test_delay(server):
    t = time.monotonic()
    assert call(server, CHAT, chat_body(), behavior="delay-300").status == 200
    assert time.monotonic() - t >= 0.3
    t = time.monotonic()
    assert call(server, CHAT, chat_body(model="gpt-4o-fake-delay-300")).status == 200
    assert time.monotonic() - t >= 0.3


@pytest.mark.parametrize("options, obfuscated", [
    ({"include_usage": True}, True),
    ({"include_usage": True, "include_obfuscation": False}, False)])
def test_obfuscation_ends_every_chunk_after_the_usage(server, options, obfuscated):
    raw = call(server, CHAT, chat_body(stream=True, stream_options=options),
               behavior="obfuscation").body
    payloads = [p for p in sse_events(raw) if p != "[DONE]"]
    assert len(payloads) > 3
    for payload in payloads:
        chunk = json.loads(payload)
        if obfuscated:   # the last member, after the usage, letters and digits
            assert list(chunk)[-2:] == ["usage", "obfuscation"], chunk
            assert chunk["obfuscation"].isalnum()
        else:
            assert "obfuscation" not in chunk


def test_delay_in_streaming_is_before_first_chunk(server):
    async def go():
        async with aiohttp.ClientSession(headers={"authorization": "Bearer sk-test"}) as s:
            t = time.monotonic()
            async with s.post(server.url + CHAT, json=chat_body(stream=True),
                              headers={"x-fake-behavior": "delay-300"}) as r:
                await r.content.readuntil(b"\n\n")
                return time.monotonic() - t
    assert asyncio.run(go()) >= 0.3


def test_stall_mid_stream(server):
    async def go():
        async with aiohttp.ClientSession(headers={"authorization": "Bearer sk-test"}) as s:
            t = time.monotonic()
            async with s.post(server.url + CHAT, json=chat_body(stream=True),
                              headers={"x-fake-behavior": "stall-400"}) as r:
                first = await r.content.readuntil(b"\n\n")
                t_first = time.monotonic() - t
                rest = await r.read()
                return first, t_first, time.monotonic() - t, rest
    first, t_first, t_all, rest = asyncio.run(go())
    assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
    assert t_first < 0.3 and t_all >= 0.4
    assert rest.endswith(b"data: [DONE]\n\n")


def test_stall_non_streaming_still_completes(server):
    t = time.monotonic()
    r = call(server, CHAT, chat_body("s"), behavior="stall-200")
    assert time.monotonic() - t >= 0.2
    assert r.json()["choices"][0]["message"]["content"] == "Echo: s"


def test_chunk_delay(server):
    t = time.monotonic()
    r = call(server, CHAT, chat_body("a b c", stream=True), behavior="chunk-delay-50")
    assert r.status == 200 and time.monotonic() - t >= 0.25  # 6 chunks, 50ms after each


# -- malformed / truncated / reset ------------------------------------------------------

def test_malformed(server):
    r = call(server, CHAT, chat_body(), behavior="malformed")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.body)
    r = call(server, "/v1/embeddings", {"model": "e-fake-malformed", "input": "x"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.body)


def test_malformed_stream_has_a_non_json_event(server):
    r = call(server, CHAT, chat_body(stream=True), behavior="malformed")
    events = sse_events(r.body)
    assert events[-1] == "[DONE]"
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1])


def test_wrong_shape_stream_has_a_json_event_of_the_wrong_shape(server):
    r = call(server, CHAT, chat_body("a b", stream=True), behavior="wrong-shape")
    events = sse_events(r.body)
    assert events[-1] == "[DONE]"
    odd = json.loads(events[1])
    assert odd["choices"][0]["delta"] == "not an object"
    # The stream around it is the usual one: the same deltas as without the behaviour.
    plain = sse_events(call(server, CHAT, chat_body("a b", stream=True)).body)

    def deltas(stream: list[str]) -> list:
        return [[c["delta"] for c in json.loads(e)["choices"]] for e in stream[:-1]]
    assert deltas(events[:1] + events[2:]) == deltas(plain)


def test_truncated_json(server):
    async def go():
        async with aiohttp.ClientSession(headers={"authorization": "Bearer sk-test"}) as s:
            async with s.post(server.url + CHAT, json=chat_body(),
                              headers={"x-fake-behavior": "truncated"}) as r:
                assert r.status == 200
                assert r.content_length and r.content_length > 0
                await r.read()
    with pytest.raises(aiohttp.ClientPayloadError):
        asyncio.run(go())


def test_truncated_through_sdk(client):
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-fake-truncated",
                                       messages=[{"role": "user", "content": "x"}])


def test_truncated_stream(server):
    got: list[bytes] = []

    async def go():
        async with aiohttp.ClientSession(headers={"authorization": "Bearer sk-test"}) as s:
            async with s.post(server.url + CHAT, json=chat_body("a b c d", stream=True),
                              headers={"x-fake-behavior": "truncated"}) as r:
                async for line in r.content:
                    got.append(line)
    with pytest.raises(aiohttp.ClientPayloadError):
        asyncio.run(go())
    events = [line for line in got if line.startswith(b"data: ")]
    assert len(events) == 2 and b"[DONE]" not in b"".join(got)


def test_reset(server):
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        call(server, CHAT, chat_body(), behavior="reset")

    async def go():
        async with aiohttp.ClientSession(headers={"authorization": "Bearer sk-test"}) as s:
            async with s.post(server.url + CHAT, json=chat_body(model="gpt-4o-fake-reset")):
                pass
    with pytest.raises(aiohttp.ClientError):
        asyncio.run(go())
    assert call(server, CHAT, chat_body()).status == 200  # server still fine


# -- fail-then-ok -------------------------------------------------------------------------

def test_fail_then_ok_sequence(server, key):
    hdrs = {"x-fake-counter-key": key}
    statuses = []
    for _ in range(4):
        r = call(server, CHAT, chat_body(), behavior="fail-then-ok-2", headers=hdrs)
        statuses.append(r.status)
        if r.status == 429:
            assert r.headers["retry-after-ms"] == "10" and r.headers["retry-after"] == "0"
    assert statuses == [429, 429, 200, 200]
    other = call(server, CHAT, chat_body(), behavior="fail-then-ok-1",
                 headers={"x-fake-counter-key": key + "-other"})
    assert other.status == 429


def test_fail_then_ok_with_sdk_retries(server, key):
    c = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=2)
    t = time.monotonic()
    r = c.chat.completions.create(model="gpt-4o-fake-fail-then-ok-2",
                                  messages=[{"role": "user", "content": "retry me"}],
                                  extra_headers={"x-fake-counter-key": key})
    assert r.choices[0].message.content == "Echo: retry me"
    assert time.monotonic() - t < 2  # retry-after-ms: 10 keeps retries fast


# -- usage shaping -------------------------------------------------------------------------

def test_cached_and_reasoning(client):
    r = client.chat.completions.create(model="gpt-4o-fake-cached-4-fake-reasoning-6",
                                       messages=[{"role": "user", "content": "one two"}])
    u = r.usage
    assert u.prompt_tokens_details.cached_tokens == 4
    assert u.completion_tokens_details.reasoning_tokens == 6
    assert u.prompt_tokens == 5 and u.completion_tokens == 3 + 6
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_forced_usage_by_header_in_stream(client):
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-behavior": "usage-1000-200,cached-300"}))
    u = chunks[-1].usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (1000, 200, 1200)
    assert u.prompt_tokens_details.cached_tokens == 300


def test_forced_usage_on_embeddings(client):
    r = client.embeddings.create(model="text-embedding-3-small", input="x",
                                 extra_headers={"x-fake-behavior": "usage-42-0"})
    assert r.usage.prompt_tokens == 42
