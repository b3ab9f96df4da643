"""The fake speaks OpenAI well enough for the official SDK."""

import json

import openai
import pytest

from .conftest import call, chat_body, sse_events

MESSAGES = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there world"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "current weather",
    "parameters": {"type": "object", "required": ["location", "unit"],
                   "properties": {"location": {"type": "string"},
                                  "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                  "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}]


def test_chat_completion(client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                           messages=MESSAGES)
    r = raw.parse()
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.model == "gpt-4o-mini" and r.created > 0 and r.system_fingerprint
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there world"
    assert choice.finish_reason == "stop"
    # prompt: (2 + 3) + (3 + 3); completion: "Echo: hello there world" = 4 words
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (11, 4, 15)
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details.reasoning_tokens == 0
    h = raw.headers
    for name in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                 "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
                 "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
                 "x-request-id", "openai-processing-ms"):
        assert h.get(name), name
    assert h["x-fake-received-authorization"] == "Bearer sk-test"
    received = h["x-fake-received-headers"].split(",")
    assert "authorization" in received and "x-stainless-lang" in received


def test_list_content_parts(client):
    r = client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "user", "content": [{"type": "text", "text": "part one"},
                                     {"type": "text", "text": "two"}]}])
    assert r.choices[0].message.content == "Echo: part one two"


def test_remaining_requests_decrements(client):
    seen = [int(client.models.with_raw_response.list().headers["x-ratelimit-remaining-requests"])
            for _ in range(3)]
    assert seen[0] - 1 == seen[1] and seen[1] - 1 == seen[2]


def test_stream_without_usage(client):
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                 stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert pieces == ["Echo: ", "hello ", "there ", "world"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


def test_stream_with_usage(client):
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage.total_tokens == 15
    assert chunks[-2].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello there world"


def test_raw_sse_shape(server):
    for include_usage in (False, True):
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        r = call(server, "/v1/chat/completions", chat_body("a b", stream=True, **extra))
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.body)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        if include_usage:
            assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
            assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 5
        else:
            assert all("usage" not in c for c in chunks)


def test_stream_options_without_stream_is_rejected(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                       stream_options={"include_usage": True})


@pytest.mark.parametrize("call_id, error", [
    (None, "Missing required parameter: 'messages[1].tool_calls[0].id'."),
    (7, "Invalid type for 'messages[1].tool_calls[0].id': expected a string."),
])
def test_tool_call_without_a_string_id_is_a_400(server, call_id, error):
    # Such an id used to crash the error listing the unanswered tool calls: a 500.
    tool_call = {"type": "function", "function": {"name": "other", "arguments": "{}"}}
    if call_id is not None:
        tool_call["id"] = call_id
    r = call(server, "/v1/chat/completions", chat_body(messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "user", "content": "no tool answer"}]))
    assert r.status == 400
    assert r.json()["error"] == {"message": error, "type": "invalid_request_error",
                                 "param": "messages[1].tool_calls[0].id", "code": None}


def test_tool_call(client):
    r = client.chat.completions.create(model="gpt-4o", tools=TOOLS, messages=[
        {"role": "user", "content": "What's the weather in Paris?"}])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (tc,) = choice.message.tool_calls
    assert tc.id.startswith("call_") and tc.type == "function"
    assert tc.function.name == "get_weather"
    assert json.loads(tc.function.arguments) == {"location": "fake location", "unit": "celsius"}


def test_streamed_tool_call_reassembles(client):
    body = dict(model="gpt-4o", tools=TOOLS,
                messages=[{"role": "user", "content": "weather please"}])
    whole = client.chat.completions.create(**body).choices[0].message.tool_calls[0]
    chunks = list(client.chat.completions.create(**body, stream=True))
    first = chunks[0].choices[0].delta.tool_calls[0]
    assert first.index == 0 and first.id.startswith("call_")
    assert first.function.name == "get_weather"
    arg_deltas = [c.choices[0].delta.tool_calls[0].function.arguments
                  for c in chunks[1:] if c.choices and c.choices[0].delta.tool_calls]
    assert len(arg_deltas) >= 2
    assert all(c.choices[0].delta.tool_calls[0].index == 0
               for c in chunks[1:] if c.choices and c.choices[0].delta.tool_calls)
    assert "".join(arg_deltas) == whole.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_call_chosen_by_header_or_tool_choice(client):
    msgs = [{"role": "user", "content": "hi"}]
    plain = client.chat.completions.create(model="gpt-4o", tools=TOOLS, messages=msgs)
    assert plain.choices[0].finish_reason == "stop"
    forced = client.chat.completions.create(model="gpt-4o", tools=TOOLS, messages=msgs,
                                            extra_headers={"x-fake-behavior": "tool-call"})
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"
    named = client.chat.completions.create(
        model="gpt-4o", tools=TOOLS, messages=msgs,
        tool_choice={"type": "function", "function": {"name": "other"}})
    assert named.choices[0].message.tool_calls[0].function.name == "other"
    assert named.choices[0].message.tool_calls[0].function.arguments == "{}"
    no_tools = client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "user", "content": "weather?"}])
    assert no_tools.choices[0].message.content == "Echo: weather?"


def test_embeddings_base64_default(client, server):
    r = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta gamma"])
    assert r.model == "text-embedding-3-small"
    assert [d.index for d in r.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in r.data)
    assert r.usage.prompt_tokens == 3 and r.usage.total_tokens == 3
    assert server.requests()[-1]["body"]["encoding_format"] == "base64"
    floats = call(server, "/v1/embeddings", {"model": "m", "input": ["alpha", "beta gamma"],
                                             "encoding_format": "float"}).json()
    assert [d.embedding for d in r.data] == [d["embedding"] for d in floats["data"]]
    assert r.data[0].embedding != r.data[1].embedding
    norm = sum(v * v for v in r.data[0].embedding)
    assert abs(norm - 1) < 1e-5


def test_embeddings_single_string_and_dimensions(client):
    r = client.embeddings.create(model="text-embedding-3-small", input="one", dimensions=3)
    assert len(r.data) == 1 and len(r.data[0].embedding) == 3
    again = client.embeddings.create(model="text-embedding-3-small", input="one", dimensions=3)
    assert again.data[0].embedding == r.data[0].embedding


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} <= set(ids)
    assert client.models.retrieve("gpt-4o").owned_by
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_routes_without_v1_prefix(server):
    assert call(server, "/chat/completions", chat_body("x")).json()["choices"][0][
        "message"]["content"] == "Echo: x"
    assert call(server, "/models").json()["object"] == "list"
    assert call(server, "/embeddings", {"model": "m", "input": "x"}).status == 200


def test_unknown_route_is_openai_shaped(server):
    r = call(server, "/v1/nope", {"a": 1})
    assert r.status == 404 and r.json()["error"]["type"] == "invalid_request_error"
