"""What each native provider receives for an OpenAI call, and the provider-specific
behaviour the conformance suite cannot state uniformly: Anthropic's defaults, headers
and cache writes; Gemini's request shape, thought signatures, RetryInfo and blocked
prompts; Azure's deployment URLs; embeddings on Gemini and Azure."""

from __future__ import annotations

import base64
import json
import struct
import uuid

import openai
import pytest

from heliograph import costs

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object",
                                       "properties": {"tz": {"type": "string"}}}}}
PNG_DATA = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
            "RU5ErkJggg==")


def sent(upstream) -> dict:
    return upstream.received()[-1]


# -- Anthropic ---------------------------------------------------------------------------

def test_anthropic_request_shape(openai_client, upstream):
    upstream.clear()
    openai_client.chat.completions.create(
        model="claude-3-5-haiku-latest", temperature=0.2, top_p=0.9, stop="END",
        user="u-1", tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=False,
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": [
                      {"type": "text", "text": "look"},
                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                                 + PNG_DATA}},
                      {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]}])
    request = sent(upstream)
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "sk-upstream-anthropic"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request["headers"]
    body = request["body"]
    assert body["system"] == [{"type": "text", "text": "be brief"}]
    assert body["max_tokens"] == 8192          # Anthropic requires one: the model's default
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.2, 0.9, ["END"])
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG_DATA}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}]}]
    assert body["tools"][0] == {"name": "get_weather", "description": "Current weather",
                                "input_schema": WEATHER["function"]["parameters"]}
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_anthropic_older_models_get_their_smaller_default(openai_client, upstream):
    upstream.clear()
    openai_client.chat.completions.create(model="claude-3-haiku-20240307",
                                          messages=[{"role": "user", "content": "x"}])
    assert sent(upstream)["body"]["max_tokens"] == 4096


def test_anthropic_parallel_tool_results_go_in_one_user_message(openai_client, upstream):
    upstream.clear()
    calls = [{"id": "toolu_a", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
             {"id": "toolu_b", "type": "function",
              "function": {"name": "get_time", "arguments": "{}"}}]
    reply = openai_client.chat.completions.create(
        model="claude-3-5-haiku-latest", tools=[WEATHER, TIME], messages=[
            {"role": "user", "content": "both"},
            {"role": "assistant", "content": "Checking.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_b", "content": "noon"},
            {"role": "user", "content": "thanks"}])
    assert reply.choices[0].message.content == "Echo: thanks"
    messages = sent(upstream)["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "noon"},
        {"type": "text", "text": "thanks"}]


def test_anthropic_json_mode_is_a_forced_tool(openai_client, upstream):
    upstream.clear()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    reply = openai_client.chat.completions.create(
        model="claude-3-5-haiku-latest", messages=[{"role": "user", "content": "json"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert reply.choices[0].message.content == '{"n":1}'
    body = sent(upstream)["body"]
    assert body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": body["tools"][0]["name"]}


def test_anthropic_cache_writes_and_rate_limits_are_recorded(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="claude-3-5-haiku-latest", messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-fake-behavior": "usage-1000-50,cached-200,cache-write-300"})
    usage = raw.parse().usage
    assert usage.prompt_tokens == 1000
    assert usage.prompt_tokens_details.cached_tokens == 200
    assert usage.prompt_tokens_details.cache_write_tokens == 300
    assert raw.headers["anthropic-ratelimit-requests-limit"]
    rec = gateway.record(raw.headers["helicone-id"])
    assert (rec["cached_tokens"], rec["cache_write_tokens"]) == (200, 300)
    expected = costs.cost_of("anthropic", "claude-3-5-haiku-latest", costs.Usage(
        prompt_tokens=1000, completion_tokens=50, cached_tokens=200, cache_write_tokens=300))
    plain = costs.cost_of("anthropic", "claude-3-5-haiku-latest", costs.Usage(
        prompt_tokens=1000, completion_tokens=50, cached_tokens=200))
    assert rec["cost_usd"] == pytest.approx(expected.usd) and expected.usd > plain.usd
    assert rec["ratelimit"]["limit_requests"] and rec["ratelimit"]["remaining_tokens"]
    assert rec["ratelimit"]["reset_requests"].endswith("s")


def test_anthropic_rejects_what_it_cannot_take_clearly(openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="claude-3-5-haiku-latest", n=2,
                                              messages=[{"role": "user", "content": "x"}])
    assert "n must be 1" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="claude-3-5-haiku-latest", messages=[
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t", "type": "function",
                 "function": {"name": "f", "arguments": "{not json"}}]}])
    assert "JSON object" in info.value.message


# -- Gemini --------------------------------------------------------------------------------

def test_gemini_request_shape(openai_client, upstream):
    upstream.clear()
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    openai_client.chat.completions.create(
        model="gemini-2.0-flash", temperature=0.3, top_p=0.8, max_tokens=99, stop=["END"],
        tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}},
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": [
                      {"type": "text", "text": "look"},
                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                                 + PNG_DATA}}]}])
    request = sent(upstream)
    assert request["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert request["headers"]["x-goog-api-key"] == "sk-upstream-gemini"
    body = request["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [{"role": "user", "parts": [
        {"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": PNG_DATA}}]}]
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Current weather",
        "parametersJsonSchema": WEATHER["function"]["parameters"]}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert body["generationConfig"] == {
        "temperature": 0.3, "topP": 0.8, "maxOutputTokens": 99, "stopSequences": ["END"],
        "responseMimeType": "application/json", "responseJsonSchema": schema}


def test_gemini_3_thought_signatures_survive_the_round_trip(openai_client, upstream):
    question = {"role": "user", "content": "weather in Paris"}
    first = openai_client.chat.completions.create(model="gemini-3-pro-preview",
                                                  messages=[question], tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    upstream.clear()
    # Gemini 3 refuses a replayed function call without its signature: this works only
    # because the signature travelled in the tool call id.
    second = openai_client.chat.completions.create(
        model="gemini-3-pro-preview", tools=[WEATHER], messages=[
            question, first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 22}'}])
    assert second.choices[0].message.content == 'Echo: {"temp":22}'
    contents = sent(upstream)["body"]["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == \
        base64.b64encode(b"fake-signature get_weather").decode()
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather",
                                                          "response": {"temp": 22}}}]


def test_gemini_thinking_tokens_are_priced_as_output(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "think"}],
        extra_headers={"x-fake-behavior": "usage-100-80,reasoning-60"})
    usage = raw.parse().usage
    assert usage.completion_tokens == 80
    assert usage.completion_tokens_details.reasoning_tokens == 60
    rec = gateway.record(raw.headers["helicone-id"])
    assert (rec["completion_tokens"], rec["reasoning_tokens"]) == (80, 60)
    expected = costs.cost_of("gemini", "gemini-2.5-flash", costs.Usage(
        prompt_tokens=100, completion_tokens=80, reasoning_tokens=60))
    assert expected.usd > 0 and rec["cost_usd"] == pytest.approx(expected.usd)


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_blocked_prompt_is_a_clear_400(gateway, openai_client, stream):
    with pytest.raises(openai.BadRequestError) as info:
        result = openai_client.chat.completions.create(
            model="gemini-2.0-flash", stream=stream,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-behavior": "prompt-blocked"})
        list(result) if stream else None
    assert "blocked the prompt" in info.value.message
    assert info.value.body["code"] == "content_filter"
    assert gateway.record(info.value.response.headers["helicone-id"])["status"] == 400


def test_gemini_retry_waits_as_retry_info_says(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gemini-2.0-flash", messages=[{"role": "user", "content": "again"}],
        extra_headers={"x-fake-behavior": "fail-then-ok-1", "Helicone-Retry-Enabled": "true",
                       "x-fake-counter-key": "gemini-retry-" + uuid.uuid4().hex})
    assert raw.parse().choices[0].message.content == "Echo: again"
    rec = gateway.record(raw.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [429, 200]
    assert rec["attempts"][0]["error"].startswith("Resource has been exhausted")


# -- Azure ---------------------------------------------------------------------------------

def test_azure_deployment_url_and_key(gateway, openai_client, upstream):
    upstream.clear()
    raw = openai_client.chat.completions.with_raw_response.create(
        model="azure/gpt-4o-mini", messages=[{"role": "user", "content": "hi azure"}])
    request = sent(upstream)
    assert request["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert request["query"] == "api-version=2024-10-21"
    assert request["headers"]["api-key"] == "sk-upstream-azure"
    assert "authorization" not in request["headers"]
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["model"] == "azure/gpt-4o-mini"
    assert rec["model_used"] == "gpt-4o-mini-2024-07-18" and rec["cost_usd"] > 0


# -- embeddings ------------------------------------------------------------------------------

@pytest.mark.parametrize("model, path", [
    ("gemini-embedding-001", "/v1beta/models/gemini-embedding-001:batchEmbedContents"),
    ("azure/text-embedding-3-small", "/openai/deployments/text-embedding-3-small/embeddings"),
])
def test_embeddings(gateway, openai_client, upstream, model, path):
    upstream.clear()
    raw = openai_client.embeddings.with_raw_response.create(model=model,
                                                             input=["one", "two words"])
    result = raw.parse()           # the SDK asked for base64 and decoded it
    assert sent(upstream)["path"] == path
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 8
    assert result.data[0].embedding != result.data[1].embedding
    floats = openai_client.embeddings.create(model=model, input=["one", "two words"],
                                             encoding_format="float")
    assert [d.embedding for d in floats.data] == [d.embedding for d in result.data]
    short = openai_client.embeddings.create(model=model, input="one", dimensions=3)
    assert len(short.data[0].embedding) == 3
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["path"] == "/v1/embeddings" and rec["status"] == 200
    assert rec["prompt_tokens"] > 0 and rec["cost_known"] and rec["cost_usd"] > 0


def test_gemini_embeddings_need_text(openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.embeddings.create(model="gemini-embedding-001", input=[[1, 2, 3]])
    assert "must be a string" in info.value.message


def test_base64_embeddings_are_float32(openai_client):
    raw = openai_client.embeddings.with_raw_response.create(
        model="gemini-embedding-001", input="one", encoding_format="base64")
    data = json.loads(raw.http_response.text)["data"][0]["embedding"]
    assert len(base64.b64decode(data)) == 8 * struct.calcsize("<f")


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_chain_across_wire_formats(gateway, openai_client, stream):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="claude-3-5-haiku-latest-fake-status-503,gemini-2.0-flash", stream=stream,
        messages=[{"role": "user", "content": "fall over"}])
    result = raw.parse()
    text = "".join(c.choices[0].delta.content or "" for c in result if c.choices) if stream \
        else result.choices[0].message.content
    assert text == "Echo: fall over"
    rec = gateway.record(raw.headers["helicone-id"])
    assert [(a["provider"], a["status"]) for a in rec["attempts"]] == [("anthropic", 503),
                                                                       ("gemini", 200)]
    assert rec["cost_usd"] > 0


@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest", "gemini-2.0-flash"])
def test_a_garbled_event_from_a_translated_stream_is_a_502(gateway, openai_client, model):
    # (OpenAI-format streams are relayed byte for byte, garbage included.)
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model, stream=True, messages=[{"role": "user", "content": "a b c"}],
        extra_headers={"x-fake-behavior": "malformed"})
    with pytest.raises(openai.APIError) as info:
        list(raw.parse())
    assert "malformed" in str(info.value)
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 502 and "malformed" in rec["error"]
