"""Calls made elsewhere, logged through Helicone's manual-logging endpoints by Helicone's
own Python logger (`helicone-helpers` from PyPI) pointed at the gateway; then read back
through the query API, priced as the proxy prices them."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid

import openai
import pytest
from helicone_helpers import HeliconeManualLogger
from servers import ADMIN_KEY


@pytest.fixture
def logger(gateway):
    return HeliconeManualLogger(api_key=ADMIN_KEY, logging_endpoint=gateway.url)


@pytest.fixture
def provider(upstream):
    """The provider called directly, as the logger's users do (not through the gateway)."""
    return openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-direct", max_retries=0)


def post_log(gateway, path: str, body, key: str | None = ADMIN_KEY, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        gateway.url + path, data=data, method="POST",
        headers={"Content-Type": "application/json", **(headers or {}),
                 **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.load(resp), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def test_log_request_is_logged_and_priced_like_a_proxied_call(gateway, logger, provider,
                                                               openai_client):
    tag = uuid.uuid4().hex[:8]
    messages = [{"role": "user", "content": f"manual log {tag}"}]
    request_id = str(uuid.uuid4())

    def operation(recorder):
        answer = provider.chat.completions.create(model="gpt-4o-mini", messages=messages)
        recorder.append_results(json.loads(answer.to_json()))
        return answer

    answer = logger.log_request(
        provider="openai", request={"model": "gpt-4o-mini", "messages": messages},
        operation=operation,
        additional_headers={"Helicone-Request-Id": request_id, "Helicone-User-Id": "alice",
                            "Helicone-Property-Tag": tag, "Helicone-Session-Id": tag})
    record = gateway.record(request_id)
    assert record["path"] == "/oai/v1/log" and record["status"] == 200
    assert record["provider"] == "openai" and record["model"] == "gpt-4o-mini"
    assert record["prompt_tokens"] == answer.usage.prompt_tokens > 0
    assert record["completion_tokens"] == answer.usage.completion_tokens > 0
    assert record["cost_known"] is True and record["cost_usd"] > 0
    assert record["user_id"] == "alice" and record["properties"] == {"tag": tag}
    assert record["session_id"] == tag
    assert record["request"]["messages"] == messages
    assert record["response"]["choices"][0]["message"]["content"] == \
        answer.choices[0].message.content
    # The same call through the proxy costs the same.
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                                 messages=messages)
    proxied = gateway.record(raw.headers["helicone-id"])
    assert proxied["prompt_tokens"] == record["prompt_tokens"]
    assert proxied["cost_usd"] == pytest.approx(record["cost_usd"])


def test_log_builder_stream_keeps_timing_and_usage(gateway, logger, provider):
    tag = uuid.uuid4().hex[:8]
    request = {"model": "gpt-4o-mini", "stream": True,
               "stream_options": {"include_usage": True},
               "messages": [{"role": "user", "content": f"stream {tag}"}]}
    request_id = str(uuid.uuid4())
    builder = logger.log_builder(request, {"Helicone-Request-Id": request_id})
    usage = None
    for chunk in provider.chat.completions.create(**request):
        time.sleep(0.02)
        builder.add_chunk(json.loads(chunk.to_json()))
        usage = chunk.usage or usage
    asyncio.run(builder.send_log())
    record = gateway.record(request_id)
    assert record["path"] == "/custom/v1/log" and record["status"] == 200
    assert record["provider"] == "openai"  # the gateway's provider for the model
    assert record["total_tokens"] == usage.total_tokens > 0
    assert record["cost_known"] is True and record["cost_usd"] > 0
    assert record["ttft_ms"] is not None and record["ttft_ms"] > 0
    assert record["latency_ms"] >= record["ttft_ms"] + 20
    assert '"model"' in record["response"]  # the chunks, as sent


def test_tool_span_through_custom_log(gateway, logger):
    tag = uuid.uuid4().hex[:8]
    request_id = str(uuid.uuid4())
    logger.log_request(
        request={"_type": "tool", "toolName": "weather_api", "input": {"city": "Paris"}},
        operation=lambda recorder: recorder.append_results({"temperature": 18.5}),
        additional_headers={"Helicone-Request-Id": request_id, "Helicone-Session-Id": tag,
                            "Helicone-Session-Path": "/agent/weather"})
    record = gateway.record(request_id)
    assert record["model"] == "tool:weather_api" and record["provider"] is None
    assert record["cost_usd"] == 0 and record["cost_known"] is True
    assert record["response"]["temperature"] == 18.5
    assert record["session_path"] == "/agent/weather"


def test_anthropic_and_gemini_native_paths_read_their_usage(gateway):
    start = int(time.time())
    timing = {"startTime": {"seconds": start, "milliseconds": 0},
              "endTime": {"seconds": start + 1, "milliseconds": 250}}
    anthropic_id = str(uuid.uuid4())
    status, body, headers = post_log(gateway, "/anthropic/v1/log", {
        "providerRequest": {"url": "https://api.anthropic.com/v1/messages",
                            "json": {"model": "claude-3-5-haiku-latest", "max_tokens": 10,
                                     "messages": [{"role": "user", "content": "hi"}]},
                            "meta": {"Helicone-User-Id": "bob"}},
        "providerResponse": {"status": 200, "headers": {}, "json": {
            "type": "message", "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": "hello"}],
            "usage": {"input_tokens": 100, "output_tokens": 20,
                      "cache_read_input_tokens": 50, "cache_creation_input_tokens": 0}}},
        "timing": timing}, headers={"Helicone-Request-Id": anthropic_id})
    assert status == 200 and body["id"] == anthropic_id == headers["helicone-id"]
    record = gateway.record(anthropic_id)
    assert record["provider"] == "anthropic"
    assert record["model_used"] == "claude-3-5-haiku-20241022"
    assert record["prompt_tokens"] == 150 and record["cached_tokens"] == 50  # OpenAI's count
    assert record["cost_known"] is True and record["cost_usd"] > 0
    assert record["latency_ms"] == 1250 and record["user_id"] == "bob"
    assert record["created_at"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S",
                                                         time.gmtime(start)))
    gemini_id = str(uuid.uuid4())
    status, body, _ = post_log(gateway, "/googleapis/v1/log", {
        "providerRequest": {"url": "https://generativelanguage.googleapis.com/v1beta/models/"
                                   "gemini-2.0-flash:generateContent",
                            "json": {"contents": [{"parts": [{"text": "hi"}]}]}},
        "providerResponse": {"status": 200, "json": {
            "candidates": [{"content": {"parts": [{"text": "hello"}]}}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3}}},
        "timing": timing}, headers={"Helicone-Request-Id": gemini_id})
    assert status == 200
    record = gateway.record(gemini_id)
    assert record["provider"] == "gemini" and record["model"] == "gemini-2.0-flash"
    assert record["prompt_tokens"] == 12 and record["completion_tokens"] == 3
    assert record["cost_known"] is True and record["cost_usd"] > 0


def test_failed_and_cancelled_calls_are_logged_with_their_status(gateway):
    failed_id, cancelled_id = str(uuid.uuid4()), str(uuid.uuid4())
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    status, _, _ = post_log(gateway, "/custom/v1/log", {
        "providerRequest": {"url": "custom-model-nopath", "json": request, "meta": {}},
        "providerResponse": {"status": 500, "headers": {},
                             "textBody": "Error: upstream exploded\n    at f()\n\n"}},
        headers={"Helicone-Request-Id": failed_id})
    assert status == 200
    status, _, _ = post_log(gateway, "/custom/v1/log", {
        "providerRequest": {"url": "custom-model-nopath", "json": request, "meta": {}},
        "providerResponse": {"status": -3, "headers": {}, "textBody": ""}},
        headers={"Helicone-Request-Id": cancelled_id})
    assert status == 200
    failed = gateway.record(failed_id)
    assert failed["status"] == 500 and failed["error"].startswith("Error: upstream exploded")
    assert failed["cost_usd"] is None and failed["cost_known"] is False
    assert gateway.record(cancelled_id)["status"] == 499


@pytest.mark.parametrize("body, expected", [
    (b"not json", "not valid JSON"),
    ([1, 2], "JSON object"),
    ({"providerRequest": {"json": {}}}, "providerResponse"),
    ({"providerRequest": {"json": "x"}, "providerResponse": {}}, "providerRequest.json"),
    ({"providerRequest": {"json": {}}, "providerResponse": {"status": 42}}, "status"),
    ({"providerRequest": {"json": {}}, "providerResponse": {},
      "timing": {"startTime": {"seconds": 2, "milliseconds": 0},
                 "endTime": {"seconds": 1, "milliseconds": 0}}}, "timing.startTime"),
    ({"providerRequest": {"json": {}}, "providerResponse": {},
      "timing": {"startTime": {"seconds": 1_700_000_001, "milliseconds": 0},
                 "endTime": {"seconds": 1_700_000_000, "milliseconds": 0}}}, "before"),
])
def test_bad_log_bodies_are_clear_400s(gateway, body, expected):
    status, answer, _ = post_log(gateway, "/custom/v1/log", body)
    assert status == 400 and expected in answer["error"]["message"]


def test_log_needs_a_gateway_key(gateway):
    body = {"providerRequest": {"json": {}}, "providerResponse": {}}
    assert post_log(gateway, "/oai/v1/log", body, key=None)[0] == 401
    assert post_log(gateway, "/oai/v1/log", body, key="sk-wrong")[0] == 401
    assert post_log(gateway, "/oai/v1/log", b"{}", key=None)[0] == 401
