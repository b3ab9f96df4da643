"""One conformance suite, run over every provider through the real gateway with the
official openai SDK: whatever wire format the provider speaks (OpenAI, an
OpenAI-compatible one, Anthropic, Gemini, Azure OpenAI), an OpenAI caller sees the same
answers, and the log shows what the caller sent and got, with usage and cost.

The fake upstream answers every format from one wire-neutral plan
(heliograph/fake_upstream/conversation.py), so equal answers here mean the translation
carried everything: e.g. a prompt-token count equal across providers proves every turn,
the system prompt included, reached the provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import openai
import pytest
from servers import ADMIN_KEY

from heliograph import costs


@dataclass(frozen=True)
class Provider:
    name: str
    model: str              # what the caller asks for
    key_header: str         # where the provider wants its key
    key_prefix: str = ""

    def __str__(self) -> str:
        return self.name


PROVIDERS = [
    Provider("openai", "gpt-4o-mini", "authorization", "Bearer "),
    Provider("groq", "llama-3.3-70b-versatile", "authorization", "Bearer "),
    Provider("anthropic", "claude-3-5-haiku-latest", "x-api-key"),
    Provider("gemini", "gemini-2.5-flash", "x-goog-api-key"),
    Provider("azure", "azure/gpt-4o-mini", "api-key"),
]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object",
                                       "properties": {"tz": {"type": "string"}}}}}
# A 1x1 PNG.
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
       "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.fixture(params=PROVIDERS, ids=str)
def provider(request) -> Provider:
    return request.param


def chat(client, provider: Provider, messages, **kwargs):
    raw = client.chat.completions.with_raw_response.create(
        model=provider.model, messages=messages, **kwargs)
    return raw.parse(), raw.headers["helicone-id"]


def stream(client, provider: Provider, messages, **kwargs):
    raw = client.chat.completions.with_raw_response.create(
        model=provider.model, messages=messages, stream=True, **kwargs)
    return list(raw.parse()), raw.headers["helicone-id"]


def streamed_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def streamed_tool_calls(chunks) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                slot = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
    return calls


def assert_priced(rec: dict) -> None:
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
    assert rec["total_tokens"] == rec["prompt_tokens"] + rec["completion_tokens"]
    assert rec["cost_known"] is True and rec["cost_usd"] > 0


# -- chat ----------------------------------------------------------------------------

def test_plain_chat_is_answered_logged_and_priced(gateway, openai_client, provider):
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello there gateway"}]
    completion, record_id = chat(openai_client, provider, messages)
    assert completion.choices[0].message.content == "Echo: hello there gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion"
    # system (2 words + 3) + user (3 words + 3)
    assert completion.usage.prompt_tokens == 11 and completion.usage.completion_tokens == 4
    rec = gateway.record(record_id)
    assert rec["status"] == 200 and rec["provider"] == provider.name
    assert rec["prompt_tokens"] == 11 and rec["completion_tokens"] == 4
    assert_priced(rec)
    # The log holds what the caller sent and what it got, in the caller's format.
    assert rec["request"] == {"model": provider.model, "messages": messages}
    assert rec["response"]["choices"][0]["message"]["content"] == "Echo: hello there gateway"


def test_multi_turn_reaches_the_provider_whole(gateway, openai_client, provider):
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "Echo: first question"},
                {"role": "user", "content": "second question"}]
    completion, record_id = chat(openai_client, provider, messages)
    assert completion.choices[0].message.content == "Echo: second question"
    # Every turn counted by the provider: (2+3) + (2+3) + (3+3) + (2+3).
    assert completion.usage.prompt_tokens == 21
    assert gateway.record(record_id)["request"]["messages"] == messages


def system_prompt_received(body: dict) -> str:
    """The instructions as the provider received them, wherever its format puts them."""
    if "systemInstruction" in body:                       # Gemini
        return " ".join(p["text"] for p in body["systemInstruction"]["parts"])
    if "system" in body:                                  # Anthropic
        system = body["system"]
        return system if isinstance(system, str) else " ".join(b["text"] for b in system)
    return " ".join(m["content"] for m in body["messages"]
                    if m["role"] in ("system", "developer"))


def test_system_and_developer_prompts_are_not_lost(upstream, openai_client, provider):
    upstream.clear()
    messages = [{"role": "system", "content": "rule one"},
                {"role": "developer", "content": "rule two three"},
                {"role": "user", "content": "go"}]
    completion, _ = chat(openai_client, provider, messages)
    assert completion.choices[0].message.content == "Echo: go"
    assert system_prompt_received(upstream.received()[-1]["body"]) == "rule one rule two three"


def test_image_input_as_url_and_base64(gateway, openai_client, provider):
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "what is in these images"},
        {"type": "image_url", "image_url": {"url": PNG}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]
    completion, record_id = chat(openai_client, provider, messages)
    assert completion.choices[0].message.content == "Echo: what is in these images"
    # 5 words + 3, and 85 tokens for each image the provider received.
    assert completion.usage.prompt_tokens == 5 + 3 + 2 * 85
    assert gateway.record(record_id)["request"]["messages"] == messages


def test_stop_sequence_and_max_tokens_set_the_finish_reason(openai_client, provider):
    messages = [{"role": "user", "content": "one two three four"}]
    stopped, _ = chat(openai_client, provider, messages, stop=["three"])
    assert stopped.choices[0].message.content == "Echo: one two "
    assert stopped.choices[0].finish_reason == "stop"
    cut, _ = chat(openai_client, provider, messages, max_tokens=2)
    assert cut.choices[0].message.content == "Echo: one"
    assert cut.choices[0].finish_reason == "length"


def test_safety_stop_is_content_filter(gateway, openai_client, provider):
    completion, record_id = chat(openai_client, provider,
                                 [{"role": "user", "content": "something"}],
                                 extra_headers={"x-fake-behavior": "content-filter"})
    assert completion.choices[0].finish_reason == "content_filter"
    assert gateway.record(record_id)["status"] == 200


# -- tools ---------------------------------------------------------------------------

def test_a_tool_call(gateway, openai_client, provider):
    completion, record_id = chat(openai_client, provider,
                                 [{"role": "user", "content": "what is the weather in Paris"}],
                                 tools=[WEATHER, TIME])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "fake city"}
    logged = gateway.record(record_id)["response"]["choices"][0]["message"]["tool_calls"]
    assert logged[0]["function"]["arguments"] == call.function.arguments


def test_parallel_tool_calls(openai_client, provider):
    completion, _ = chat(openai_client, provider,
                         [{"role": "user", "content": "use get_weather and get_time"}],
                         tools=[WEATHER, TIME])
    calls = completion.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].function.arguments) == {"tz": "fake tz"}
    assert len({c.id for c in calls}) == 2
    single, _ = chat(openai_client, provider,
                     [{"role": "user", "content": "use get_weather and get_time"}],
                     tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [c.function.name for c in single.choices[0].message.tool_calls] == ["get_weather"]


def test_tool_choice_forces_a_named_tool_or_none(openai_client, provider):
    named, _ = chat(openai_client, provider, [{"role": "user", "content": "hi"}],
                    tools=[WEATHER, TIME],
                    tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    required, _ = chat(openai_client, provider, [{"role": "user", "content": "hi"}],
                       tools=[WEATHER, TIME], tool_choice="required")
    assert required.choices[0].message.tool_calls[0].function.name == "get_weather"
    none, _ = chat(openai_client, provider,
                   [{"role": "user", "content": "weather please"}],
                   tools=[WEATHER], tool_choice="none")
    assert none.choices[0].message.content == "Echo: weather please"


def test_tool_results_round_trip(gateway, openai_client, provider):
    question = {"role": "user", "content": "use get_weather and get_time"}
    first, _ = chat(openai_client, provider, [question], tools=[WEATHER, TIME])
    calls = first.choices[0].message.tool_calls
    messages = [question, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 22 degrees"},
                {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"}]
    second, record_id = chat(openai_client, provider, messages, tools=[WEATHER, TIME])
    assert second.choices[0].message.content == "Echo: sunny, 22 degrees noon"
    assert second.choices[0].finish_reason == "stop"
    assert gateway.record(record_id)["request"]["messages"][2]["content"] == "sunny, 22 degrees"


def test_json_mode(openai_client, provider):
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "unit": {"type": "string",
                                                        "enum": ["celsius", "fahrenheit"]}},
              "required": ["city", "unit"], "additionalProperties": False}
    structured, _ = chat(openai_client, provider,
                         [{"role": "user", "content": "the weather as JSON"}],
                         response_format={"type": "json_schema", "json_schema": {
                             "name": "weather", "schema": schema, "strict": True}})
    assert json.loads(structured.choices[0].message.content) == {"city": "fake city",
                                                                  "unit": "celsius"}
    assert structured.choices[0].finish_reason == "stop"
    assert not structured.choices[0].message.tool_calls
    plain, _ = chat(openai_client, provider, [{"role": "user", "content": "answer in JSON"}],
                    response_format={"type": "json_object"})
    assert isinstance(json.loads(plain.choices[0].message.content), dict)


# -- streaming ---------------------------------------------------------------------------

def test_streamed_text_equals_the_plain_answer(gateway, openai_client, provider):
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "stream these five words please"}]
    plain, _ = chat(openai_client, provider, messages)
    chunks, record_id = stream(openai_client, provider, messages)
    assert streamed_text(chunks) == plain.choices[0].message.content
    # (Azure opens with a prompt-filter chunk that has no choices.)
    assert [c for c in chunks if c.choices][0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks)     # the caller did not ask for usage
    rec = gateway.record(record_id)
    assert rec["status"] == 200 and rec["ttft_ms"] is not None
    assert rec["prompt_tokens"] == plain.usage.prompt_tokens
    assert_priced(rec)
    assert rec["response"]["choices"][0]["message"]["content"] == streamed_text(chunks)


def test_stream_usage_arrives_in_a_final_chunk_when_asked(openai_client, provider):
    chunks, _ = stream(openai_client, provider, [{"role": "user", "content": "count me"}],
                       stream_options={"include_usage": True})
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 5 and chunks[-1].usage.completion_tokens == 3


def test_streamed_tool_calls_reassemble_byte_for_byte(gateway, openai_client, provider):
    messages = [{"role": "user", "content": "use get_weather and get_time"}]
    plain, _ = chat(openai_client, provider, messages, tools=[WEATHER, TIME])
    chunks, record_id = stream(openai_client, provider, messages, tools=[WEATHER, TIME])
    streamed = streamed_tool_calls(chunks)
    expected = plain.choices[0].message.tool_calls
    assert sorted(streamed) == [0, 1]
    for index, call in enumerate(expected):
        assert streamed[index]["name"] == call.function.name
        assert streamed[index]["arguments"] == call.function.arguments
        assert streamed[index]["id"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    logged = gateway.record(record_id)["response"]["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in logged] == \
        [c.function.arguments for c in expected]


# -- usage, cost, errors ------------------------------------------------------------------

def test_cached_and_reasoning_tokens_are_logged_and_priced(gateway, openai_client, provider):
    completion, record_id = chat(openai_client, provider, [{"role": "user", "content": "x"}],
                                 extra_headers={"x-fake-behavior":
                                                "usage-1000-200,cached-300,reasoning-40"})
    assert completion.usage.prompt_tokens == 1000
    assert completion.usage.prompt_tokens_details.cached_tokens == 300
    rec = gateway.record(record_id)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["cached_tokens"]) == \
        (1000, 200, 300)
    assert rec["reasoning_tokens"] == 40
    expected = costs.cost_of(provider.name, rec["model_used"], costs.Usage(
        prompt_tokens=1000, completion_tokens=200, cached_tokens=300, reasoning_tokens=40))
    assert expected.known and rec["cost_usd"] == pytest.approx(expected.usd)


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_upstream_errors_keep_their_status_and_message(gateway, openai_client, provider,
                                                       status):
    with pytest.raises(openai.APIStatusError) as info:
        chat(openai_client, provider, [{"role": "user", "content": "x"}],
             extra_headers={"x-fake-behavior": f"status-{status}"})
    err = info.value
    assert err.status_code == status
    body = err.body if isinstance(err.body, dict) else {}
    message = body.get("message") or ""
    assert message and not message.startswith("provider ")    # the provider's own words
    assert body.get("type")
    rec = gateway.record(err.response.headers["helicone-id"])
    assert rec["status"] == status and rec["error"] == message
    assert rec["attempts"][0]["provider"] == provider.name


@pytest.mark.parametrize("behavior, fragment", [("malformed", "malformed"),
                                                ("truncated", "truncated")])
def test_broken_answers_are_502s(gateway, openai_client, provider, behavior, fragment):
    with pytest.raises(openai.APIStatusError) as info:
        chat(openai_client, provider, [{"role": "user", "content": "x"}],
             extra_headers={"x-fake-behavior": behavior})
    assert info.value.status_code == 502 and fragment in str(info.value)


def test_a_cut_stream_is_reported_in_band_and_logged(gateway, openai_client, provider):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=provider.model, stream=True, messages=[{"role": "user", "content": "a b c d e"}],
        extra_headers={"x-fake-behavior": "truncated"})
    with pytest.raises(openai.APIError):
        list(raw.parse())
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 502 and rec["error"]


def test_a_stream_refused_upstream_keeps_its_status(gateway, openai_client, provider):
    with pytest.raises(openai.RateLimitError) as info:
        stream(openai_client, provider, [{"role": "user", "content": "x"}],
               extra_headers={"x-fake-behavior": "status-429"})
    assert info.value.body["message"]
    assert gateway.record(info.value.response.headers["helicone-id"])["status"] == 429


def test_bring_your_own_key_reaches_the_provider_in_its_header(gateway, upstream, provider):
    upstream.clear()
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-callers-own",
                           default_headers={"Helicone-Auth": f"Bearer {ADMIN_KEY}"},
                           max_retries=0)
    completion, _ = chat(client, provider, [{"role": "user", "content": "byok"}])
    assert completion.choices[0].message.content == "Echo: byok"
    headers = upstream.received()[-1]["headers"]
    assert headers[provider.key_header] == provider.key_prefix + "sk-callers-own"
    assert ADMIN_KEY not in json.dumps(headers)
