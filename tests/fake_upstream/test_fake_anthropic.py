"""The fake speaks Anthropic's Messages API well enough for the official SDK, and
enforces the rules a translation could break."""

import json

import anthropic
import pytest

from .conftest import call

TOOLS = [{"name": "get_weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_time", "input_schema": {"type": "object",
                                          "properties": {"tz": {"type": "string"}}}}]
HEADERS = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
def claude(server):
    return anthropic.Anthropic(base_url=server.url, api_key="sk-test", max_retries=0)


def messages(server, body, behavior=None, headers=HEADERS, path="/v1/messages"):
    return call(server, path, body, behavior=behavior, auth=None, headers=headers)


def body(text="hello there", **extra):
    return {"model": "claude-3-5-haiku-latest", "max_tokens": 100,
            "messages": [{"role": "user", "content": text}], **extra}


def test_a_message(claude):
    m = claude.messages.create(**body(system="be brief"))
    assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant"
    assert m.content[0].text == "Echo: hello there" and m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (5 + 5, 3)


def test_extended_thinking_opens_the_answer(claude):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    m = claude.messages.create(**body("ponder this", thinking=thinking, max_tokens=2000))
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert m.content[0].thinking == "Thinking about: ponder this" and m.content[0].signature
    with claude.messages.stream(**body("ponder this", thinking=thinking,
                                       max_tokens=2000)) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == "Thinking about: ponder this"
    assert final.content[0].signature == m.content[0].signature
    assert claude.messages.create(**body("no thinking")).content[0].type == "text"


def test_the_documented_event_sequence(server):
    r = messages(server, body("a b", stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in r.body.decode().split("\n\n") if b]
    names = [b.split("\n")[0][len("event: "):] for b in blocks]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    data = [json.loads(b.split("\n")[1][len("data: "):]) for b in blocks]
    assert all(d["type"] == n for d, n in zip(data, names))
    assert data[0]["message"]["usage"]["input_tokens"] == 5
    assert data[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert data[-2]["usage"] == {"output_tokens": 3}


def test_streamed_parallel_tool_use(claude):
    with claude.messages.stream(**body("get_weather and get_time"), tools=TOOLS) as s:
        final = s.get_final_message()
    assert [(b.name, b.input) for b in final.content] == [
        ("get_weather", {"city": "fake city"}), ("get_time", {"tz": "fake tz"})]
    assert final.stop_reason == "tool_use"


def test_usage_shaping_splits_cache_reads_and_writes(claude):
    m = claude.messages.create(**body(), extra_headers={
        "x-fake-behavior": "usage-1000-20,cached-100,cache-write-300,reasoning-5"})
    u = m.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == \
        (600, 100, 300)
    assert u.output_tokens == 20 and u.output_tokens_details.thinking_tokens == 5


@pytest.mark.parametrize("payload, fragment", [
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    (body(temperature=1.5), "temperature"),
    ({**body(), "messages": [{"role": "system", "content": "x"}]}, "role"),
    ({**body(), "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
     "non-empty"),
    ({**body(), "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": "no result"}]}, "without `tool_result`"),
    # A tool_use without a (string) id used to crash the message above: a 500.
    ({**body(), "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]},
        {"role": "user", "content": "no result"}]}, "messages.1.content.0.tool_use.id: Field required"),
    ({**body(), "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": 3, "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": "no result"}]},
     "messages.1.content.0.tool_use.id: Input should be a valid string"),
    ({**body(), "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope",
                                      "content": "x"}]}]}, "unexpected `tool_use_id`"),
    ({**body(), "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                     "data": "AAAA"}}]}]}, "media_type"),
])
def test_invalid_requests_are_anthropic_400s(server, payload, fragment):
    r = messages(server, payload)
    assert r.status == 400
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]


def test_auth_and_version_headers(server):
    assert messages(server, body(), headers={"anthropic-version": "2023-06-01"}).status == 401
    bad = messages(server, body(), headers={**HEADERS, "x-api-key": "sk-bad"})
    assert bad.status == 401 and bad.json()["error"]["type"] == "authentication_error"
    assert messages(server, body(), headers={"x-api-key": "k"}).status == 400
    bearer = messages(server, body(), headers={"authorization": "Bearer k",
                                               "anthropic-version": "2023-06-01"})
    assert bearer.status == 200


def test_errors_and_rate_limit_headers(server):
    r = messages(server, body(), behavior="status-429")
    assert r.status == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert r.headers["retry-after"] == "1"
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert messages(server, body(), behavior="status-529").json()["error"]["type"] == \
        "overloaded_error"
    ok = messages(server, body())
    assert ok.headers["request-id"].startswith("req_")
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert ok.headers[f"anthropic-ratelimit-{kind}-limit"]
        assert ok.headers[f"anthropic-ratelimit-{kind}-reset"].endswith("Z")


def test_prefixed_route_and_count_tokens(server):
    assert messages(server, body(), path="/anthropic/v1/messages").status == 200
    counted = messages(server, body("one two three"), path="/v1/messages/count_tokens")
    assert counted.json() == {"input_tokens": 6}


def test_wrong_shape_keeps_the_answer_among_members_of_the_wrong_types(server):
    plain = messages(server, body()).json()
    odd = messages(server, body(), behavior="wrong-shape").json()
    assert odd["content"][:2] == ["no block", 5] and odd["content"][5:] == plain["content"]
    assert odd["stop_reason"] == ["end_turn"] and odd["model"] == 7
    assert odd["usage"] == {"input_tokens": [1],
                            "output_tokens": plain["usage"]["output_tokens"]}
    error = messages(server, body(), behavior="status-429, wrong-shape").json()["error"]
    assert error["type"] == ["rate_limit_error"]
