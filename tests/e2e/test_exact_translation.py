"""Exact translation of OpenAI chat to Claude and Gemini, through the gateway with the
official SDKs: every field translated, refused with a 400 naming it, or dropped (the
table in formats/openai/request_fields.py); reasoning mapped both ways; system-only
conversations; tool results need their call's id; OpenAI's null keys; Gemini token
counting on the Anthropic front."""

import anthropic
import httpx
import openai
import pytest
from servers import ADMIN_KEY

CLAUDE, GEMINI = "claude-3-5-haiku-latest", "gemini-2.0-flash"
HI = [{"role": "user", "content": "Hi"}]


def last_sent(upstream, fragment: str) -> dict:
    return [r for r in upstream.received() if fragment in r["path"]][-1]["body"]


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
@pytest.mark.parametrize("extra, field", [
    ({"stream": "foo"}, "stream"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": -5}, "max_completion_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"logprobs": True}, "logprobs"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"bogus_field": 1}, "bogus_field"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
])
def test_fields_the_target_cannot_take_are_a_400_naming_them(gateway, openai_client, model,
                                                             extra, field):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model, messages=HI, extra_body=extra)
    assert f"({field})" in caught.value.body["message"]
    record = gateway.record(caught.value.response.headers["helicone-id"])
    assert record["status"] == 400


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_dropped_fields_are_accepted_and_the_answer_has_openais_null_keys(
        gateway, openai_client, model):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model, messages=HI, seed=7, store=False, metadata={"a": "b"},
        service_tier="auto", logit_bias={"50256": -100}, logprobs=False)
    body = raw.http_response.json()
    assert body["system_fingerprint"] is None
    assert body["choices"][0]["logprobs"] is None
    assert body["choices"][0]["message"]["refusal"] is None
    chunks = [c.model_dump() for c in openai_client.chat.completions.create(
        model=model, messages=HI, stream=True)]
    assert all("system_fingerprint" in c for c in chunks)
    assert all(c["choices"][0]["logprobs"] is None for c in chunks if c["choices"])


def test_reasoning_effort_becomes_claudes_thinking_budget(upstream, openai_client):
    openai_client.chat.completions.create(model=CLAUDE, messages=HI, reasoning_effort="low")
    sent = last_sent(upstream, "/v1/messages")
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] == 8192 + 2048      # the default, plus the thinking
    openai_client.chat.completions.create(model=CLAUDE, messages=HI, reasoning_effort="high",
                                          max_completion_tokens=4000)
    sent = last_sent(upstream, "/v1/messages")
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 3999}
    assert sent["max_tokens"] == 4000
    openai_client.chat.completions.create(model=CLAUDE, messages=HI, reasoning_effort="none")
    assert "thinking" not in last_sent(upstream, "/v1/messages")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=CLAUDE, messages=HI,
                                              reasoning_effort="minimal", max_tokens=500)
    assert "thinking budget" in caught.value.body["message"]


@pytest.mark.parametrize("model, effort, config", [
    (GEMINI, "medium", {"thinkingBudget": 8192, "includeThoughts": True}),
    (GEMINI, "none", {"thinkingBudget": 0}),
    ("gemini-3-pro-preview", "minimal", {"thinkingLevel": "low"}),
])
def test_reasoning_effort_becomes_geminis_thinking_config(upstream, openai_client, model,
                                                          effort, config):
    openai_client.chat.completions.create(model=model, messages=HI, reasoning_effort=effort)
    sent = last_sent(upstream, ":generateContent")
    assert sent["generationConfig"]["thinkingConfig"] == config


def test_claude_thinking_becomes_reasoning_effort_elsewhere(gateway, upstream):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    client.messages.create(model="gemini-2.0-flash", max_tokens=9000, messages=HI,
                           thinking={"type": "enabled", "budget_tokens": 5000})
    config = last_sent(upstream, ":generateContent")["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] == 8192    # "medium"


def test_anthropic_server_tools_are_refused_where_they_cannot_run(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="gpt-4o-mini", max_tokens=100, messages=HI,
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert "tools[0] (web_search_20250305)" in caught.value.body["error"]["message"]
    assert caught.value.body["type"] == "error"


@pytest.mark.parametrize("model, fragment", [(CLAUDE, "/v1/messages"),
                                             (GEMINI, ":generateContent")])
def test_a_system_only_conversation_is_answered(upstream, openai_client, model, fragment):
    answer = openai_client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Say hello"}])
    assert answer.choices[0].message.content
    sent = last_sent(upstream, fragment)
    turns = sent.get("messages") or sent.get("contents")
    assert [t["role"] for t in turns] == ["user"]
    assert "system" not in sent and "systemInstruction" not in sent


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_a_tool_result_without_its_call_id_is_a_400(openai_client, model):
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "content": "sunny"}]
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model, messages=messages)
    assert "messages[2].tool_call_id" in caught.value.body["message"]


def test_gemini_models_count_tokens_with_geminis_own_count(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    short = client.messages.with_raw_response.count_tokens(model=GEMINI, messages=HI)
    long = client.messages.count_tokens(
        model=GEMINI, messages=[{"role": "user", "content": "Hi " * 50}], system="Be brief")
    assert 0 < short.parse().input_tokens < long.input_tokens
    record = gateway.record(short.headers["helicone-id"])
    assert (record["provider"], record["cost_usd"]) == ("gemini", 0.0)


def test_openai_error_without_type_or_code_is_made_whole(gateway):
    # The fake's 404 for an unknown path is OpenAI's; a bare one comes from Ollama-like
    # servers. Reached through the relayed surface, the caller sees all four keys.
    response = httpx.get(gateway.url + "/v1/files/file-nope",
                         headers={"authorization": f"Bearer {ADMIN_KEY}"})
    error = response.json()["error"]
    assert response.status_code == 404 and {"message", "type", "code", "param"} <= set(error)


TOOLS = [{"type": "function", "function": {"name": name, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}
    for name in ("weather", "local_time")]


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE, GEMINI])
def test_several_tool_calls_in_one_reply(openai_client, model):
    ask = {"model": model, "messages": [{"role": "user", "content": "Plan my trip"}],
           "tools": TOOLS, "extra_headers": {"x-fake-behavior": "tool-calls-3"}}
    calls = openai_client.chat.completions.create(**ask).choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["weather", "local_time", "weather"]
    assert len({c.id for c in calls}) == 3
    streamed: dict[int, str] = {}
    for chunk in openai_client.chat.completions.create(**ask, stream=True):
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta.function and delta.function.name:
                streamed[delta.index] = delta.function.name
    assert streamed == {0: "weather", 1: "local_time", 2: "weather"}


@pytest.mark.parametrize("extra, field", [({"stream": "foo"}, "stream"),
                                          ({"temperature": 1.5}, "temperature"),
                                          ({"top_k": -1}, "top_k")])
def test_anthropic_callers_fields_are_validated_before_translation(gateway, extra, field):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=GEMINI, max_tokens=50, messages=HI, extra_body=extra)
    assert caught.value.body["type"] == "error"
    assert f"({field})" in caught.value.body["error"]["message"]
