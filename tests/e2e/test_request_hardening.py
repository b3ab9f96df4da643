"""Odd requests and odd providers, through the real server: each gets a clear answer and
an honest record, never a 500, a hang or a broken header."""

import json
import socket
import time
import urllib.parse
import uuid

import pytest
from servers import ADMIN_KEY, websocket_upgrade
from test_provider_hardening import call

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
USER = [{"role": "user", "content": "hi"}]


def test_an_unparseable_retry_after_falls_back_to_the_normal_backoff(gateway):
    status, headers, payload = call(
        gateway, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": USER},
        {**AUTH, "x-fake-behavior": "fail-then-ok-1, retry-after-soon",
         "x-fake-counter-key": uuid.uuid4().hex, "Helicone-Retry-Enabled": "true",
         "Helicone-Retry-Min-Timeout": "10", "Helicone-Retry-Max-Timeout": "10"})
    assert status == 200, payload  # was a 500: parsing `soon` as a date raised
    record = gateway.record(headers["helicone-id"])
    assert record["status"] == 200


def test_non_ascii_header_values_are_stored_as_sent_and_can_be_filtered(gateway):
    tag = "café-" + uuid.uuid4().hex[:6]
    raw = tag.encode()  # UTF-8 bytes on the wire, as clients send them
    body = json.dumps({"model": "gpt-4o-mini", "messages": USER}).encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nHelicone-Property-Place: " + raw +
                     b"\r\nHelicone-User-Id: " + raw + b"\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 200"), head
    record_id = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                 if line.lower().startswith("helicone-id:")][0]
    record = gateway.record(record_id)
    assert record["properties"]["place"] == tag and record["user_id"] == tag
    status, found = gateway.api("/api/v1/requests?property.place=" + urllib.parse.quote(tag))
    assert status == 200 and [r["id"] for r in found["data"]] == [record_id]


@pytest.mark.parametrize("model", ["gpt-4o-mini\r\nx-evil: 1,gpt-4o", "gpt-4o\n",
                                   "gpt-4o-mini,gpt\u00054o"])
def test_a_model_name_with_control_characters_is_a_400(gateway, model):
    status, headers, payload = call(gateway, "/v1/chat/completions",
                                    {"model": model, "messages": USER}, AUTH)
    assert status == 400 and payload["error"]["code"] == "invalid_model", payload
    assert "control character" in payload["error"]["message"]
    assert gateway.record(headers["helicone-id"])["status"] == 400


def _provider_has(upstream, mark: str, timeout: float = 15) -> bool:
    """Whether the fake provider received the call carrying x-test-mark: mark (it records
    a call on arrival, before its delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["headers"].get("x-test-mark") == mark for r in upstream.received()):
            return True
        time.sleep(0.02)
    return False


def test_a_caller_gone_before_a_non_stream_answer_is_logged_499(gateway, upstream):
    request_id = str(uuid.uuid4())
    body = json.dumps({"model": "gpt-4o-mini", "messages": USER}).encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nx-fake-behavior: delay-800\r\n"
                     b"x-test-mark: " + request_id.encode() + b"\r\n"
                     b"Helicone-Request-Id: " + request_id.encode() + b"\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        # The caller leaves once the provider has the call (a fixed sleep raced a busy
        # machine, where the gateway had not read the request yet: nothing paid for).
        assert _provider_has(upstream, request_id)
    record = gateway.record(request_id)
    assert record["status"] == 499 and "disconnected" in record["error"]
    assert record["response"]["choices"][0]["message"]["content"]  # what was paid for


def test_malformed_provider_usage_leaves_the_cost_unknown(gateway):
    status, headers, payload = call(gateway, "/v1/chat/completions",
                                    {"model": "gpt-4o-mini", "messages": USER},
                                    {**AUTH, "x-fake-behavior": f"usage-{10**16}-5"})
    assert status == 200
    record = gateway.record(headers["helicone-id"])
    assert record["prompt_tokens"] == 0 and record["cost_known"] is False


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/anything"])
def test_a_websocket_upgrade_is_a_logged_400_not_a_500(gateway, path):
    reply = websocket_upgrade(gateway.port, path)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"WebSocket is not supported" in reply
    log = gateway.log_text()
    assert f"refused a WebSocket upgrade on {path} (400" in log
    assert "Exception in ASGI application" not in log and "ERROR" not in log


def _scored_request(gateway):
    status, headers, _ = call(gateway, "/v1/chat/completions",
                              {"model": "gpt-4o-mini", "messages": USER}, AUTH)
    rid = headers["helicone-id"]
    gateway.record(rid)
    return rid


def test_scores_are_bounded_in_number_name_and_value(gateway):
    rid = _scored_request(gateway)
    score = f"/v1/request/{rid}/score"
    status, body = gateway.api(score, method="POST",
                               body={"scores": {f"s{i}": i for i in range(30)}})
    assert status == 200, body
    # 30 + 30 new names would pass 50: refused whole, nothing merged.
    status, body = gateway.api(score, method="POST",
                               body={"scores": {f"t{i}": i for i in range(30)}})
    assert status == 400 and "at most 50 scores" in body["error"]["message"]
    status, body = gateway.api(score, method="POST", body={"scores": {"x" * 101: 1}})
    assert status == 400 and "1 to 100 characters" in body["error"]["message"]
    status, body = gateway.api(score, method="POST",
                               body={"scores": {f"u{i}": 1 for i in range(51)}})
    assert status == 400 and "at most 50 scores per request" in body["error"]["message"]
    status, body = gateway.api(score, method="POST", body={"scores": {"big": 2 ** 60}})
    assert status == 400 and "finite number" in body["error"]["message"]
    assert gateway.api(score, method="POST", body={"scores": {"s0": 0.5}})[0] == 200
    scores = gateway.record(rid)["scores"]
    assert len(scores) == 30 and scores["s0"] == 0.5 and "t0" not in scores
