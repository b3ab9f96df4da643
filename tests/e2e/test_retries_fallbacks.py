"""Helicone-Retry-* and Helicone-Fallback-* through the real gateway, and the provider
rate-limit tracking behind GET /api/v1/ratelimits."""

import time
import uuid

import openai
import pytest

MESSAGES = [{"role": "user", "content": "are you there"}]


def retry_headers(**extra):
    return {"Helicone-Retry-Enabled": "true", "Helicone-Retry-Min-Timeout": "50",
            "Helicone-Retry-Max-Timeout": "200", "x-fake-counter-key": uuid.uuid4().hex,
            **extra}


def test_429_then_200_with_retries_on(gateway, openai_client):
    started = time.monotonic()
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini-fake-fail-then-ok-2", messages=MESSAGES,
        extra_headers=retry_headers())
    elapsed = time.monotonic() - started
    assert raw.parse().choices[0].message.content == "Echo: are you there"
    rec = gateway.record(raw.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [429, 429, 200]
    assert rec["attempts"][0]["error"] and rec["attempts"][2]["error"] is None
    assert rec["status"] == 200 and rec["error"] is None
    # Backoff: 50 ms, then 50 * 2 = 100 ms.
    assert elapsed >= 0.15 and rec["latency_ms"] >= 150


def test_429_is_returned_with_retries_off(gateway, openai_client):
    for enabled in (None, "false"):
        headers = retry_headers()
        if enabled is None:
            del headers["Helicone-Retry-Enabled"]
        else:
            headers["Helicone-Retry-Enabled"] = enabled
        with pytest.raises(openai.RateLimitError) as info:
            openai_client.chat.completions.create(
                model="gpt-4o-mini-fake-fail-then-ok-2", messages=MESSAGES,
                extra_headers=headers)
        rec = gateway.record(info.value.response.headers["helicone-id"])
        assert [a["status"] for a in rec["attempts"]] == [429]


def test_retry_after_from_the_provider_is_honoured(gateway, openai_client):
    # The fake's plain 429 says retry-after: 1 (retry-after-ms: 1000); min backoff is 10 ms.
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(
            model="gpt-4o-mini-fake-status-429", messages=MESSAGES,
            extra_headers={"Helicone-Retry-Enabled": "true", "Helicone-Retry-Num": "1",
                           "Helicone-Retry-Min-Timeout": "10",
                           "Helicone-Retry-Max-Timeout": "5000"})
    assert time.monotonic() - started >= 1.0
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [429, 429]


def test_connection_errors_are_retried(gateway, openai_client):
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.chat.completions.create(
            model="down-model", messages=MESSAGES,
            extra_headers={"Helicone-Retry-Enabled": "true", "Helicone-Retry-Num": "2",
                           "Helicone-Retry-Min-Timeout": "10"})
    assert info.value.status_code == 502
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [502, 502, 502]


def test_bad_retry_header_is_a_400(gateway, openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES,
            extra_headers={"Helicone-Retry-Enabled": "true", "Helicone-Retry-Num": "lots"})
    assert "helicone-retry-num" in info.value.response.json()["error"]["message"].lower()


def test_503_primary_falls_back_to_the_next_model(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini-fake-status-503", messages=MESSAGES,
        extra_headers={"Helicone-Fallback-Model": "gpt-4o"})
    assert raw.parse().model == "gpt-4o"
    assert raw.headers["helicone-fallback-index"] == "1"
    assert raw.headers["helicone-model-used"] == "gpt-4o"
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 200 and rec["fallback_index"] == 1
    assert rec["model"] == "gpt-4o-mini-fake-status-503" and rec["model_used"] == "gpt-4o"
    assert [(a["model"], a["status"]) for a in rec["attempts"]] == \
        [("gpt-4o-mini-fake-status-503", 503), ("gpt-4o", 200)]
    assert rec["cost_known"] and rec["cost_usd"] > 0


def test_comma_chain_in_model_crosses_providers_and_streams(gateway, openai_client):
    stream = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-fake-status-500,groq/llama-3.1-8b-instant", messages=MESSAGES,
        stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text == "Echo: are you there"
    assert stream.headers["helicone-fallback-index"] == "1"
    assert stream.headers["helicone-model-used"] == "llama-3.1-8b-instant"
    rec = gateway.record(stream.headers["helicone-id"])
    assert rec["provider"] == "groq" and rec["fallback_index"] == 1
    assert [a["provider"] for a in rec["attempts"]] == ["openai", "groq"]


def test_every_step_failing_names_each_failure(gateway, openai_client):
    with pytest.raises(openai.InternalServerError) as info:
        openai_client.chat.completions.create(
            model="gpt-4o-fake-status-503", messages=MESSAGES,
            extra_headers={"Helicone-Fallback-Model": "gpt-4o-mini-fake-status-500"})
    message = info.value.response.json()["error"]["message"]
    assert "gpt-4o-fake-status-503" in message and "503" in message
    assert "gpt-4o-mini-fake-status-500" in message and "500" in message
    assert info.value.status_code == 500
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert [a["status"] for a in rec["attempts"]] == [503, 500]
    assert rec["fallback_index"] == 1


def test_codes_outside_oncodes_do_not_fall_back(gateway, openai_client):
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(
            model="gpt-4o-fake-status-400", messages=MESSAGES,
            extra_headers={"Helicone-Fallback-Model": "gpt-4o-mini"})
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-fake-status-400", messages=MESSAGES,
        extra_headers={"Helicone-Fallback-Model": "gpt-4o-mini",
                       "Helicone-Fallback-OnCodes": "400"})
    assert raw.headers["helicone-model-used"] == "gpt-4o-mini"


def test_retries_apply_per_fallback_step(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-fake-status-503", messages=MESSAGES,
        extra_headers={**retry_headers(), "Helicone-Retry-Num": "1",
                       "Helicone-Fallback-Model": "gpt-4o-mini-fake-fail-then-ok-1"})
    rec = gateway.record(raw.headers["helicone-id"])
    assert [(a["model"][:6], a["status"]) for a in rec["attempts"]] == \
        [("gpt-4o", 503), ("gpt-4o", 503), ("gpt-4o", 429), ("gpt-4o", 200)]
    assert rec["attempts"][3]["model"] == "gpt-4o-mini-fake-fail-then-ok-1"


def test_provider_rate_limits_are_tracked(gateway, openai_client):
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(model="gpt-4o-mini-fake-status-429",
                                              messages=MESSAGES)
    gateway.record(info.value.response.headers["helicone-id"])
    status, body = gateway.api("/api/v1/ratelimits")
    assert status == 200
    groups = {(g["provider"], g["model"]): g for g in body["data"]}
    ok = groups[("openai", "gpt-4o-mini")]
    assert int(ok["latest"]["limit_requests"]) > 0
    assert int(ok["latest"]["remaining_requests"]) >= 0
    limited = groups[("openai", "gpt-4o-mini-fake-status-429")]
    assert limited["requests_429"] >= 1
    assert limited["latest"]["remaining_requests"] == "0"
    assert limited["latest"]["retry_after"] == "1"
    assert sum(b["count"] for b in limited["rate_limited_over_time"]) == limited["requests_429"]
