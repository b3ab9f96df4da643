"""Embeddings, the model list, and a caller that leaves mid-stream."""

import socket

import openai
from servers import ADMIN_KEY


def test_embeddings_through_the_sdk(gateway, openai_client):
    raw = openai_client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["one", "two words"])
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in result.data)
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["path"] == "/v1/embeddings" and rec["status"] == 200
    assert rec["prompt_tokens"] == result.usage.prompt_tokens > 0
    assert rec["cost_known"] is True and rec["cost_usd"] > 0
    assert rec["request"]["input"] == ["one", "two words"]


def test_models_lists_the_providers_models(gateway, openai_client):
    models = {m.id: m for m in openai_client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small", "llama3.2"} <= set(models)
    # Anthropic's and Gemini's own listings, in OpenAI's shape; Gemini's tuning-only
    # model is left out (it answers no chat or embedding call).
    claude = models["claude-sonnet-4-5-20250929"]
    assert (claude.owned_by, claude.created) == ("anthropic", 1759104000)
    assert models["gemini-2.5-flash"].owned_by == "google"
    assert "gemini-embedding-001" in models and "gemini-tuning-base" not in models
    assert not any(m.startswith("models/") for m in models)


def test_models_needs_a_key(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-hg-wrong", max_retries=0)
    try:
        client.models.list()
    except openai.AuthenticationError:
        return
    raise AssertionError("models listed without a valid key")


def test_client_disconnect_mid_stream_is_logged_with_what_was_received(gateway):
    body = (b'{"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", '
            b'"content": "one two three four five six seven eight nine ten"}]}')
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
               b"Content-Type: application/json\r\nx-fake-behavior: chunk-delay-300\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(request)
    received = b""
    while received.count(b"data: ") < 3:
        received += sock.recv(65536)
    sock.close()
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    record_id = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                 if line.lower().startswith("helicone-id:")][0]
    rec = gateway.record(record_id)
    assert rec["status"] == 499 and "disconnected" in rec["error"]
    content = rec["response"]["choices"][0]["message"]["content"]
    assert content.startswith("Echo: ") and "ten" not in content
    assert rec["latency_ms"] < 3000


def test_client_leaving_while_the_provider_stalls_is_noticed_at_once(gateway):
    # The caller watch starts when the relay has to wait for the provider (here after
    # the first chunk, for 5 s): leaving then ends the upstream call at once, as a 499.
    body = (b'{"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", '
            b'"content": "one two three"}]}')
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
               b"Content-Type: application/json\r\nx-fake-behavior: stall-5000\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(request)
    received = b""
    while b"data: " not in received:
        received += sock.recv(65536)
    sock.close()
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    record_id = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                 if line.lower().startswith("helicone-id:")][0]
    rec = gateway.record(record_id)
    assert rec["status"] == 499 and "disconnected" in rec["error"]
    assert rec["latency_ms"] < 4000
