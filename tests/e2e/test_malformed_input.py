"""Fields of the wrong type, found by fuzzing the real server: each is the caller's 400
naming the field (OpenAI- or Anthropic-shaped by the front), logged, never a 500; and a
record that cannot be encoded as it came is still logged."""

import json
import urllib.error
import urllib.request

import pytest
from servers import ADMIN_KEY

USER = [{"role": "user", "content": "hi"}]


def send(gateway, path, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(gateway.url + path, data=data, method="POST", headers={
        "Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json",
        **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


def chat(model, **fields):
    return {"model": model, "messages": USER, **fields}


CLAUDE, GEMINI = "anthropic/claude-3-5-haiku-latest", "gemini/gemini-2.5-flash"

OPENAI_FRONT_CASES = [
    # Translated to Anthropic
    (chat(CLAUDE, stop=5), "stop"),
    (chat(CLAUDE, tools="search"), "tools"),
    (chat(CLAUDE, response_format="json"), "response_format"),
    (chat(CLAUDE, response_format={"type": "json_schema", "json_schema": "x"}),
     "response_format.json_schema"),
    (chat(CLAUDE, messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
     "messages[0].content[0].text"),
    (chat(CLAUDE, messages=[*USER, {"role": "assistant", "tool_calls": "x"}]),
     "tool_calls"),
    (chat(CLAUDE, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_data": 5}}]}]), "file.file_data"),
    # Translated to Gemini
    (chat(GEMINI, stop={"a": 1}), "stop"),
    (chat(GEMINI, tools=5), "tools"),
    (chat(GEMINI, response_format=[]), "response_format"),
    (chat(GEMINI, messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": "x"}]}]), "input_audio"),
    (chat(GEMINI, messages=[*USER, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": 5}]), "content"),
    # Any provider
    (chat("gpt-4o-mini", stream=True, stream_options="yes"), "stream_options"),
    (chat(" , "), "names no model"),
]


@pytest.mark.parametrize("body, fragment", OPENAI_FRONT_CASES,
                         ids=[f"{b['model']}-{f}" for b, f in OPENAI_FRONT_CASES])
def test_openai_front_wrong_types_are_400(gateway, body, fragment):
    status, headers, payload = send(gateway, "/v1/chat/completions", body)
    assert status == 400, payload
    assert set(payload["error"]) >= {"message", "type", "code"}
    assert fragment in payload["error"]["message"], payload
    record = gateway.record(headers["helicone-id"])
    assert record["status"] == 400 and fragment in record["error"]


def message(**fields):
    return {"model": "gpt-4o-mini", "max_tokens": 16, "messages": USER, **fields}


ANTHROPIC_FRONT_CASES = [
    (message(metadata=["u1"]), "metadata"),
    (message(output_format="json"), "output_format"),
    (message(tools=5), "tools"),
    (message(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice="auto"),
     "tool_choice"),
    (message(system=[{"type": "text", "text": 5}]), "system[0].text"),
    (message(messages=[*USER, {"role": "assistant", "content": [
        {"type": "text", "text": [1]}]}]), "messages.1.content[0].text"),
    (message(messages=[{"role": "user", "content": [{"type": "text", "text": None},
                                                    {"type": "text", "text": {"a": 1}}]}]),
     "messages.0.content[1].text"),
]


@pytest.mark.parametrize("body, fragment", ANTHROPIC_FRONT_CASES,
                         ids=[f for _, f in ANTHROPIC_FRONT_CASES])
def test_anthropic_front_wrong_types_are_400(gateway, body, fragment):
    status, headers, payload = send(gateway, "/v1/messages", body)
    assert status == 400, payload
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"], payload
    assert gateway.record(headers["helicone-id"])["status"] == 400


@pytest.mark.parametrize("headers, fragment", [
    ({"Helicone-Cache-Enabled": "true", "Cache-Control": "max-age=\u00b2"}, "max-age"),
    ({"Helicone-Fallback-OnCodes": "\u00b2\u00b2\u00b2"}, "Fallback-OnCodes"),
    # int() refuses strings of more than 4,300 digits: once a 500.
    ({"Helicone-Cache-Enabled": "true", "Cache-Control": "max-age=" + "9" * 5000},
     "max-age"),
    ({"Helicone-RateLimit-Policy": "9" * 5000 + ";w=60"}, "Helicone-RateLimit-Policy"),
])
def test_odd_numbers_in_headers_are_400(gateway, headers, fragment):
    # str.isdigit() accepts "²", int() does not: once a 500.
    encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
    status, _, payload = send(gateway, "/v1/chat/completions", chat("gpt-4o-mini"), encoded)
    assert status == 400 and fragment in payload["error"]["message"], payload


@pytest.mark.parametrize("query", ["status=abc", "status=99999999999999999999",
                                   "status=" + "9" * 5000, "limit=" + "9" * 5000,
                                   "status=%C2%B2", "limit=%C2%B2"])
def test_bad_numbers_in_the_query_api_are_400(gateway, query):
    status, payload = gateway.api(f"/api/v1/requests?{query}")
    assert status == 400, payload
    assert payload["error"]["message"]


@pytest.mark.parametrize("depth, status", [(126, 200), (127, 400), (300, 400),
                                           (1000, 400)])
def test_a_body_nested_too_deep_is_a_400_and_logged(gateway, depth, status):
    # orjson reads 1024 levels but writes only 254: a body nested that deep could not be
    # forwarded, cached or logged. The limit is 128 levels: "metadata" and "nested" add 2.
    deep = b"[" * depth + b"]" * depth
    body = (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],'
            b' "metadata": {"nested": ' + deep + b"}}")
    code, headers, payload = send(gateway, "/v1/chat/completions", body,
                                  {"Helicone-Cache-Enabled": "true"})
    assert code == status, payload
    record = gateway.record(headers["helicone-id"])
    assert record["status"] == status and record["model"] in (None, "gpt-4o-mini")
    if status == 400:
        assert "nested deeper than 128 levels" in payload["error"]["message"]
    else:
        assert record["request"]["metadata"]["nested"] == json.loads(deep)
    status, listed = gateway.api("/api/v1/requests?bodies=true&limit=1000")
    assert status == 200, listed
    assert headers["helicone-id"] in [r["id"] for r in listed["data"]]


@pytest.mark.parametrize("prompt", [2**63, 2**64 - 100, 10**16])
def test_absurd_token_counts_from_the_provider_are_logged_as_malformed(gateway, prompt):
    # More tokens than fit a 64-bit column once blocked the journal writer; any count
    # over 10**15 is the provider's error, logged like a malformed count (0).
    status, headers, payload = send(gateway, "/v1/chat/completions", chat("gpt-4o-mini"),
                                    {"x-fake-behavior": f"usage-{prompt}-5"})
    assert status == 200 and payload["usage"]["prompt_tokens"] == prompt
    record = gateway.record(headers["helicone-id"])
    assert (record["prompt_tokens"], record["completion_tokens"]) == (0, 5)
    follow_up = send(gateway, "/v1/chat/completions", chat("gpt-4o-mini"))
    assert gateway.record(follow_up[1]["helicone-id"])["status"] == 200


@pytest.mark.parametrize("behavior, stream, fragment", [
    ("status-999", False, "HTTP status 999, neither a success nor an error"),
    ("status-999", True, "HTTP status 999, neither a success nor an error"),
    ("status-302", False, "answered with a redirect (HTTP 302"),
    ("status-304", True, "answered with a redirect (HTTP 304"),
    ("status-600", False, "HTTP status 600, neither a success nor an error"),
    ("status-204", True, "status 204 and no stream"),
])
def test_odd_provider_statuses_are_502(gateway, behavior, stream, fragment):
    # Relaying status 999 once crashed the HTTP server's send (a 500 and a traceback).
    status, headers, payload = send(gateway, "/v1/chat/completions",
                                    chat("gpt-4o-mini", stream=stream),
                                    {"x-fake-behavior": behavior})
    assert status == 502, payload
    assert fragment in payload["error"]["message"]
    record = gateway.record(headers["helicone-id"])
    assert record["status"] == 502 and fragment in record["error"]


def test_a_caller_leaving_before_its_body_arrives_is_not_an_error(gateway):
    import socket
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(b"POST /v1/request/x/feedback HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
                     b"Content-Length: 100\r\n\r\n{")
    assert gateway.api("/api/v1/requests?limit=1")[0] == 200  # still serving
    assert "internal error" not in gateway.log_text()


@pytest.mark.parametrize("over", [1, 72, 4096])
def test_a_body_just_over_the_limit_gets_its_413_at_once(gateway, over):
    # The chunk that crossed the 1 MB limit was the last one; waiting for more hung.
    filler = b"a" * (1024 * 1024 + over - 70)
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + filler \
        + b'"}]}'
    assert len(body) > 1024 * 1024
    status, headers, payload = send(gateway, "/v1/chat/completions", body)
    assert status == 413 and "limit" in payload["error"]["message"]


@pytest.mark.parametrize("path", [
    "/api/v1/requests?model=a%00b", "/api/v1/requests/a%00b", "/api/v1/users/a%00b",
    "/api/v1/sessions/a%00b", "/api/v1/requests?q=%00",
    "/api/v1/metrics?group_by=property.a%00"])
def test_nul_characters_in_the_query_api_are_400(gateway, path):
    status, payload = gateway.api(path)
    assert status == 400 and "NUL" in payload["error"]["message"], payload


def test_a_nul_in_a_callers_strings_is_logged_and_later_records_too(gateway):
    body = json.dumps(chat("gpt-4o-mini", user="a\u0000b")).encode()
    status, headers, _ = send(gateway, "/v1/chat/completions", body)
    assert status == 200
    assert gateway.record(headers["helicone-id"])["user_id"] in ("a\u0000b", "a\ufffdb")
    _, later, _ = send(gateway, "/v1/chat/completions", chat("gpt-4o-mini"))
    assert gateway.record(later["helicone-id"])["status"] == 200
