"""Every failure is an OpenAI-shaped error with the right status, is logged, and the
gateway keeps serving."""

import json
import subprocess
import urllib.error
import urllib.request

import openai
import pytest
from servers import ADMIN_KEY


def post(gateway, body: bytes, headers=None, path="/v1/chat/completions"):
    req = urllib.request.Request(gateway.url + path, data=body, method="POST", headers={
        "Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json",
        **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def assert_openai_error(body, fragment):
    assert set(body["error"]) >= {"message", "type", "code"}
    assert fragment.lower() in body["error"]["message"].lower(), body


def logged(gateway, headers, status):
    rec = gateway.record(headers["Helicone-Id"] if "Helicone-Id" in headers
                         else headers["helicone-id"])
    assert rec["status"] == status and rec["error"]
    return rec


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"messages": []}', 400, "model"),
    (b'{"model": "", "messages": []}', 400, "model"),
    (b'{"model": "no-such-model-xyz", "messages": []}', 404, "no-such-model-xyz"),
    (b'{"model": "deepseek-chat", "messages": []}', 401, "no API key configured"),
])
def test_bad_requests(gateway, body, status, fragment):
    code, headers, payload = post(gateway, body)
    assert code == status
    assert_openai_error(payload, fragment)
    logged(gateway, headers, status)


def test_oversized_body_is_413(gateway):
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' \
        + b"x" * (2 * 1024 * 1024) + b'"}]}'
    code, headers, payload = post(gateway, big)
    assert code == 413
    assert_openai_error(payload, "limit")
    logged(gateway, headers, 413)


@pytest.mark.parametrize("behavior, status, fragment", [
    ("status-500", 500, ""),
    ("status-503", 503, ""),
    ("status-429", 429, ""),
    ("status-400", 400, ""),
    ("malformed", 502, "malformed"),
    ("truncated", 502, "truncated"),
    ("reset", 502, "connection"),
    ("delay-5000", 504, "in time"),
])
def test_upstream_failures(gateway, behavior, status, fragment):
    body = json.dumps({"model": "gpt-4o-mini",
                       "messages": [{"role": "user", "content": "x"}]}).encode()
    code, headers, payload = post(gateway, body, {"x-fake-behavior": behavior})
    assert code == status, payload
    assert_openai_error(payload, fragment)
    rec = logged(gateway, headers, status)
    assert rec["attempts"][0]["status"] == status
    # ...and the gateway still serves.
    code, _, payload = post(gateway, json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ok"}]}).encode())
    assert code == 200


def test_upstream_429_reaches_the_sdk_as_rate_limit_error(gateway, openai_client):
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(
            model="gpt-4o-mini-fake-status-429", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers.get("retry-after")
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert rec["status"] == 429
    assert rec["ratelimit"]["remaining_requests"] == "0"


def test_unreachable_provider_is_502(gateway):
    code, headers, payload = post(gateway, b'{"model": "down-model", "messages": []}')
    assert code == 502
    assert_openai_error(payload, "could not connect")
    logged(gateway, headers, 502)


def test_stream_timeout_mid_stream_is_reported_in_band_and_logged(gateway, openai_client):
    with pytest.raises(Exception):  # noqa: B017 - whichever error the SDK raises for an in-band error
        stream = openai_client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "a b c"}],
            extra_headers={"x-fake-behavior": "stall-5000"})
        record_id = stream.headers["helicone-id"]
        list(stream.parse())
    rec = gateway.record(record_id)
    assert rec["status"] == 504 and "in time" in rec["error"]


@pytest.mark.parametrize("auth", [None, "Bearer sk-hg-wrong"])
def test_missing_or_wrong_key_is_401_before_the_provider(gateway, upstream, auth):
    upstream.clear()
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST",
            gateway.url + "/v1/chat/completions", "-H", "Content-Type: application/json",
            "-d", '{"model": "gpt-4o-mini", "messages": []}']
    if auth:
        args += ["-H", f"Authorization: {auth}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "401"
    assert json.loads(body)["error"]["type"] == "authentication_error"
    assert upstream.received() == []


def test_wrong_method_on_a_proxy_path_is_405_and_unknown_path_404(gateway):
    out = subprocess.run(["curl", "-s", "-i", gateway.url + "/v1/chat/completions",
                          "-H", f"Authorization: Bearer {ADMIN_KEY}"],
                         capture_output=True, text=True, check=True).stdout
    head, body = out.replace("\r\n", "\n").split("\n\n", 1)
    assert head.startswith("HTTP/1.1 405") and "allow: post" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "method_not_allowed" and error["type"] == "invalid_request_error"
    code, _, payload = post(gateway, b"{}", path="/v1/no-such-thing")
    assert code == 404 and payload["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_wrong_method_on_an_anthropic_path_is_an_anthropic_shaped_405(gateway, path):
    out = subprocess.run(["curl", "-s", "-i", "-X", "PUT", gateway.url + path,
                          "-H", f"x-api-key: {ADMIN_KEY}"],
                         capture_output=True, text=True, check=True).stdout
    head, body = out.replace("\r\n", "\n").split("\n\n", 1)
    assert head.startswith("HTTP/1.1 405") and "allow: post" in head.lower()
    payload = json.loads(body)
    assert payload["type"] == "error" and "PUT is not allowed" in payload["error"]["message"]


def _stream_raw(gateway, path: str, body: dict, behavior: str) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(gateway.url + path, data=json.dumps(body).encode(),
                                 method="POST", headers={
                                     "Authorization": f"Bearer {ADMIN_KEY}",
                                     "Content-Type": "application/json",
                                     "x-fake-behavior": behavior})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_a_stream_event_of_the_wrong_shape_is_relayed_and_the_stream_logged(gateway):
    """A provider's chunk that is JSON but whose members have the wrong types (a delta
    that is a string, content a number, a tool call no object): relayed as it came, the
    stream ends normally, and the record is logged with the answer the other chunks make."""
    status, headers, body = _stream_raw(gateway, "/v1/chat/completions", {
        "model": "gpt-4o-mini", "stream": True,
        "messages": [{"role": "user", "content": "one two three"}]}, "wrong-shape")
    assert status == 200
    assert b'"delta":"not an object"' in body    # relayed as it came
    assert body.rstrip().endswith(b"data: [DONE]")
    rec = gateway.record(headers["helicone-id"])
    assert rec["status"] == 200 and rec["error"] is None
    relayed_text = ""
    for line in body.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    relayed_text += delta["content"]
    assert "one two three" in relayed_text
    assert rec["response"]["choices"][0]["message"]["content"] == relayed_text
    assert rec["completion_tokens"] > 0


def test_a_stream_event_of_the_wrong_shape_reaches_an_anthropic_caller_and_is_logged(
        gateway):
    """The same chunk from an OpenAI-format provider, translated for an Anthropic caller:
    the events it can make are sent, the stream ends with message_stop, the record is
    logged."""
    status, headers, body = _stream_raw(gateway, "/v1/messages", {
        "model": "gpt-4o-mini", "stream": True, "max_tokens": 50,
        "messages": [{"role": "user", "content": "one two three"}]}, "wrong-shape")
    assert status == 200
    assert b"event: message_stop" in body
    assert b"one" in body and b"three" in body
    rec = gateway.record(headers["helicone-id"])
    assert rec["status"] == 200 and rec["error"] is None



@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"model": "claude-3-5-haiku-latest", "stream": True,
                              "max_tokens": 50,
                              "messages": [{"role": "user", "content": "one two three"}]}),
    ("/v1/messages", {"model": "claude-3-5-haiku-latest", "stream": True, "max_tokens": 50,
                      "messages": [{"role": "user", "content": "one two three"}]}),
], ids=["openai-caller", "anthropic-caller"])
def test_an_anthropic_event_of_the_wrong_shape_does_not_break_the_stream(gateway, path, body):
    """Anthropic's typed events with deltas of the wrong shape (a string delta, a list
    index, a text that is a number), translated for an OpenAI caller or relayed to an
    Anthropic one: the stream ends normally and is logged with the text."""
    status, headers, raw = _stream_raw(gateway, path, body, "wrong-shape")
    assert status == 200
    assert (b"data: [DONE]" if path == "/v1/chat/completions"
            else b"event: message_stop") in raw
    rec = gateway.record(headers["helicone-id"])
    assert rec["status"] == 200 and rec["error"] is None
    assert "one two three" in json.dumps(rec["response"])


def test_an_answer_of_the_wrong_shape_is_relayed_or_translated_and_logged(gateway):
    """A provider's non-streamed answer that is JSON of the wrong shape (a message that is
    a string, usage that is no object): an OpenAI caller gets it as it came, an Anthropic
    caller a message with what could be read (nothing), never a 500; both are logged."""
    for path, body in [
            ("/v1/chat/completions", {"model": "gpt-4o-mini",
                                      "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/messages", {"model": "gpt-4o-mini", "max_tokens": 20,
                              "messages": [{"role": "user", "content": "hi"}]})]:
        req = urllib.request.Request(gateway.url + path, data=json.dumps(body).encode(),
                                     method="POST", headers={
                                         "Authorization": f"Bearer {ADMIN_KEY}",
                                         "Content-Type": "application/json",
                                         "x-fake-behavior": "wrong-shape"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, headers, answer = resp.status, dict(resp.headers), json.load(resp)
        assert status == 200, path
        if path == "/v1/messages":
            assert answer["type"] == "message" and answer["content"] == []
        else:
            assert answer["choices"][0]["message"] == "not an object"
        rec = gateway.record(headers["helicone-id"])
        assert rec["status"] == 200 and rec["error"] is None
