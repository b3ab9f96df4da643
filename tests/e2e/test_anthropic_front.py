"""POST /v1/messages: the official `anthropic` SDK with its base URL set to the gateway,
routed natively to Anthropic and translated to OpenAI-format providers (and Gemini)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import anthropic
import pytest
from servers import ADMIN_KEY

from heliograph import costs

ROUTES = [("anthropic", "claude-3-5-haiku-latest"), ("openai", "gpt-4o-mini"),
          ("gemini", "gemini-2.5-flash")]
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
TIME = {"name": "get_time", "input_schema": {"type": "object",
                                             "properties": {"tz": {"type": "string"}}}}


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)


@pytest.fixture(params=ROUTES, ids=[r[0] for r in ROUTES])
def route(request):
    return request.param


def create(client, **kwargs):
    raw = client.messages.with_raw_response.create(**kwargs)
    return raw.parse(), raw.headers["helicone-id"]


def without_nones(value):
    if isinstance(value, dict):
        return {k: without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nones(v) for v in value]
    return value


def post(gateway, body: dict, headers: dict):
    req = urllib.request.Request(gateway.url + "/v1/messages", data=json.dumps(body).encode(),
                                 method="POST", headers={"content-type": "application/json",
                                                         **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_message_with_a_system_prompt(gateway, client, route):
    provider, model = route
    body = {"model": model, "max_tokens": 256, "system": "be brief",
            "messages": [{"role": "user", "content": "hello there claude"}]}
    message, record_id = create(client, **body)
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Echo: hello there claude"
    assert message.stop_reason == "end_turn"
    # system (2 + 3) + user (3 + 3): the system prompt reached the provider.
    assert message.usage.input_tokens == 11 and message.usage.output_tokens == 4
    rec = gateway.record(record_id)
    assert rec["status"] == 200 and rec["provider"] == provider and rec["path"] == "/v1/messages"
    assert rec["request"] == body                      # as the caller sent it
    # ...and as the caller got it.
    assert without_nones(rec["response"]) == message.model_dump(mode="json", exclude_none=True)
    assert rec["prompt_tokens"] == 11 and rec["cost_known"] and rec["cost_usd"] > 0


def test_tool_use_and_tool_results(gateway, client, route):
    _, model = route
    question = {"role": "user", "content": "use get_weather and get_time"}
    first, _ = create(client, model=model, max_tokens=256, tools=[WEATHER, TIME],
                      messages=[question])
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", {"city": "fake city"}),
                                                  ("get_time", {"tz": "fake tz"})]
    results = [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"},
               {"type": "tool_result", "tool_use_id": calls[1].id,
                "content": [{"type": "text", "text": "noon"}]}]
    second, record_id = create(client, model=model, max_tokens=256, tools=[WEATHER, TIME],
                               messages=[question, {"role": "assistant",
                                                    "content": first.content},
                                         {"role": "user", "content": results}])
    assert second.content[0].text == "Echo: sunny noon"
    assert second.stop_reason == "end_turn"
    single, _ = create(client, model=model, max_tokens=256, tools=[WEATHER, TIME],
                       tool_choice={"type": "tool", "name": "get_time",
                                    "disable_parallel_tool_use": True},
                       messages=[{"role": "user", "content": "hi"}])
    assert [b.name for b in single.content if b.type == "tool_use"] == ["get_time"]


def test_streamed_text(gateway, client, route):
    _, model = route
    with client.messages.stream(model=model, max_tokens=256, system="be brief",
                                messages=[{"role": "user", "content": "stream these words"}]
                                ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "Echo: stream these words"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 5 + 6
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_delta" in events and "message_delta" in events


def test_streamed_tool_use_arrives_as_input_json_deltas(gateway, client, route):
    _, model = route
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=256, tools=[WEATHER, TIME], stream=True,
        messages=[{"role": "user", "content": "use get_weather and get_time"}])
    events = list(raw.parse())
    starts = [e for e in events if e.type == "content_block_start"]
    assert [s.content_block.name for s in starts] == ["get_weather", "get_time"]
    assert [s.index for s in starts] == [0, 1]
    pieces: dict[int, str] = {}
    for e in events:
        if e.type == "content_block_delta":
            assert e.delta.type == "input_json_delta"
            pieces[e.index] = pieces.get(e.index, "") + e.delta.partial_json
    assert {i: json.loads(p) for i, p in pieces.items()} == {0: {"city": "fake city"},
                                                              1: {"tz": "fake tz"}}
    delta = [e for e in events if e.type == "message_delta"][0]
    assert delta.delta.stop_reason == "tool_use" and delta.usage.output_tokens > 0
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 200 and rec["cost_usd"] > 0
    logged = rec["response"]
    assert logged["stop_reason"] == "tool_use"
    assert [b["input"] for b in logged["content"]] == [{"city": "fake city"}, {"tz": "fake tz"}]


def test_anthropic_native_passthrough_keeps_what_openai_cannot_carry(gateway, client,
                                                                      upstream):
    upstream.clear()
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 100,
            "system": [{"type": "text", "text": "long context", "cache_control":
                        {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]}
    message, record_id = create(client, **body, extra_body={"top_k": 5},
                                extra_headers={"x-fake-behavior": "cache-write-40,cached-20"})
    sent = upstream.received()[-1]
    assert sent["path"] == "/v1/messages" and sent["body"] == body | {"top_k": 5}
    usage = message.usage
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (40, 20)
    rec = gateway.record(record_id)
    assert (rec["cache_write_tokens"], rec["cached_tokens"]) == (40, 20)
    assert rec["prompt_tokens"] == usage.input_tokens + 40 + 20
    expected = costs.cost_of("anthropic", "claude-3-5-haiku-latest", costs.Usage(
        prompt_tokens=rec["prompt_tokens"], completion_tokens=usage.output_tokens,
        cached_tokens=20, cache_write_tokens=40))
    assert rec["cost_usd"] == pytest.approx(expected.usd)
    # The native stream is relayed event for event (ping included, which SDKs hide).
    req = urllib.request.Request(gateway.url + "/v1/messages", method="POST",
                                 data=json.dumps(body | {"stream": True}).encode(),
                                 headers={"authorization": f"Bearer {ADMIN_KEY}",
                                          "anthropic-version": "2023-06-01"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    events = [line[len("event: "):] for line in text.splitlines() if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "ping", "content_block_delta",
                      "content_block_delta", "content_block_stop", "message_delta",
                      "message_stop"]


def test_translated_request_reaches_openai_as_openai(gateway, client, upstream):
    upstream.clear()
    create(client, model="gpt-4o-mini", max_tokens=50, system="be brief",
           extra_body={"temperature": 0.5},
           stop_sequences=["END"], metadata={"user_id": "u-7"},
           messages=[{"role": "user", "content": [
               {"type": "text", "text": "look"},
               {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]}])
    sent = upstream.received()[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["messages"][1]["content"][1] == {"type": "image_url", "image_url": {
        "url": "https://x.test/a.png"}}
    assert (sent["max_tokens"], sent["temperature"], sent["stop"], sent["user"]) == \
        (50, 0.5, ["END"], "u-7")


def test_errors_are_anthropic_shaped(gateway, client):
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="gpt-4o-mini", max_tokens=10,
                               messages=[{"role": "user", "content": "x"}],
                               extra_headers={"x-fake-behavior": "status-429"})
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model="claude-3-5-haiku-latest", max_tokens=10,
                               messages=[{"role": "user", "content": "x"}],
                               extra_headers={"x-fake-behavior": "status-529"})
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"
    status, body = post(gateway, {"model": "gpt-4o-mini",
                                  "messages": [{"role": "user", "content": "x"}]},
                        {"x-api-key": ADMIN_KEY})
    assert status == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and "max_tokens" in \
        body["error"]["message"]
    status, body = post(gateway, {"model": "gpt-4o-mini", "max_tokens": 5,
                                  "messages": [{"role": "user", "content": "x"}]},
                        {"x-api-key": "sk-hg-wrong"})
    assert status == 401 and body["error"]["type"] == "authentication_error"


def test_x_api_key_and_bring_your_own_key(gateway, upstream):
    status, body = post(gateway, {"model": "claude-3-5-haiku-latest", "max_tokens": 5,
                                  "messages": [{"role": "user", "content": "key"}]},
                        {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"})
    assert status == 200 and body["content"][0]["text"] == "Echo: key"
    upstream.clear()
    status, body = post(gateway, {"model": "claude-3-5-haiku-latest", "max_tokens": 5,
                                  "messages": [{"role": "user", "content": "byok"}]},
                        {"x-api-key": "sk-ant-callers-own", "anthropic-version": "2023-06-01",
                         "helicone-auth": f"Bearer {ADMIN_KEY}"})
    assert status == 200
    assert upstream.received()[-1]["headers"]["x-api-key"] == "sk-ant-callers-own"


@pytest.mark.parametrize("stream", [False, True])
def test_cache_hits_replay_in_the_callers_format(gateway, client, route, stream):
    _, model = route
    body = {"model": model, "max_tokens": 50,
            "messages": [{"role": "user", "content": "cache " + uuid.uuid4().hex}]}
    headers = {"Helicone-Cache-Enabled": "true"}

    def ask():
        if not stream:
            raw = client.messages.with_raw_response.create(**body, extra_headers=headers)
            return raw.headers, raw.parse()
        with client.messages.stream(**body, extra_headers=headers) as s:
            return s.response.headers, s.get_final_message()

    first_headers, first = ask()
    assert first_headers["helicone-cache"] == "MISS"
    deadline = time.monotonic() + 5
    while True:     # the cache is written after the answer is sent
        headers_, again = ask()
        if headers_["helicone-cache"] == "HIT" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert headers_["helicone-cache"] == "HIT"
    assert again.content == first.content and again.stop_reason == first.stop_reason
    rec = gateway.record(headers_["helicone-id"])
    assert rec["cache"] == "hit" and rec["cost_usd"] == 0
    assert rec["response"]["content"][0]["text"] == first.content[0].text


def test_fallback_from_openai_to_anthropic_answers_natively(gateway, client):
    raw = client.messages.with_raw_response.create(
        model="gpt-4o-mini-fake-status-503,claude-3-5-haiku-latest", max_tokens=20,
        messages=[{"role": "user", "content": "fall over"}])
    message = raw.parse()
    assert message.content[0].text == "Echo: fall over"
    assert raw.headers["helicone-fallback-index"] == "1"
    rec = gateway.record(raw.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [503, 200]
    assert rec["provider"] == "anthropic"
