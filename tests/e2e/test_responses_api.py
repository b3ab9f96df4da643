"""POST /v1/responses: OpenAI's Responses API passed through to OpenAI and Azure with the
official SDK, streaming included, logged and priced. Other providers get it translated:
test_responses_translated.py."""

from __future__ import annotations

import json

import openai
import pytest

from heliograph import costs

WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
ROUTES = [("openai", "gpt-4o-mini", "/v1/responses"),
          ("azure", "azure/gpt-4o-mini", "/openai/v1/responses")]


@pytest.fixture(params=ROUTES, ids=[r[0] for r in ROUTES])
def route(request):
    return request.param


def test_a_response_is_passed_through_logged_and_priced(gateway, openai_client, upstream,
                                                        route):
    provider, model, upstream_path = route
    upstream.clear()
    raw = openai_client.responses.with_raw_response.create(
        model=model, instructions="be brief", input="hello responses")
    response = raw.parse()
    assert response.output_text == "Echo: hello responses"
    assert response.status == "completed"
    sent = upstream.received()[-1]
    assert sent["path"] == upstream_path and sent["body"]["input"] == "hello responses"
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["path"] == "/v1/responses" and rec["status"] == 200
    assert rec["provider"] == provider
    assert rec["prompt_tokens"] == response.usage.input_tokens > 0
    assert rec["completion_tokens"] == response.usage.output_tokens > 0
    assert rec["cost_known"] is True and rec["cost_usd"] > 0
    assert rec["request"] == {"model": model, "instructions": "be brief",
                              "input": "hello responses"}
    assert rec["response"]["id"] == response.id
    assert rec["response"]["output"][0]["content"][0]["text"] == "Echo: hello responses"


def test_a_streamed_response(gateway, openai_client, route):
    _, model, _ = route
    raw = openai_client.responses.with_raw_response.create(
        model=model, input="stream this answer", stream=True)
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: stream this answer"
    final = events[-1].response
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 200 and rec["ttft_ms"] is not None
    assert rec["prompt_tokens"] == final.usage.input_tokens
    assert rec["cost_usd"] > 0
    assert rec["response"]["id"] == final.id and rec["response"]["status"] == "completed"


def test_function_calls_stream_and_round_trip(openai_client, route):
    _, model, _ = route
    plain = openai_client.responses.create(model=model, input="weather in Paris?",
                                           tools=[WEATHER])
    (call,) = plain.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "fake city"}
    events = list(openai_client.responses.create(model=model, input="weather in Paris?",
                                                 tools=[WEATHER], stream=True))
    streamed = "".join(e.delta for e in events
                       if e.type == "response.function_call_arguments.delta")
    assert streamed == call.arguments
    answer = openai_client.responses.create(model=model, tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert answer.output_text == "Echo: sunny"


def test_cached_and_reasoning_tokens_are_priced(gateway, openai_client):
    raw = openai_client.responses.with_raw_response.create(
        model="gpt-4o-mini", input="x",
        extra_headers={"x-fake-behavior": "usage-1000-100,cached-400,reasoning-30"})
    rec = gateway.record(raw.headers["helicone-id"])
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["reasoning_tokens"]) == \
        (1000, 400, 30)
    expected = costs.cost_of("openai", "gpt-4o-mini", costs.Usage(
        prompt_tokens=1000, completion_tokens=100, cached_tokens=400, reasoning_tokens=30))
    assert rec["cost_usd"] == pytest.approx(expected.usd)


def test_errors(gateway, openai_client):
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.responses.create(model="gpt-4o-mini", input="x",
                                       extra_headers={"x-fake-behavior": "status-429"})
    assert gateway.record(info.value.response.headers["helicone-id"])["status"] == 429
    raw = openai_client.responses.with_raw_response.create(
        model="gpt-4o-mini", input="a b c d e f", stream=True,
        extra_headers={"x-fake-behavior": "truncated"})
    events = list(raw.parse())
    # Responses streams report failures in-band as an `error` event, as OpenAI does.
    assert events[-1].type == "error" and "truncated" in events[-1].message
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 502 and "truncated" in rec["error"]
