"""How a stream is relayed on the wire: events that arrive together leave together (one
write to the caller per upstream read, seen as one HTTP chunk), and they are still
exactly the events the caller asked for, and logged."""

from __future__ import annotations

import json
import socket

import openai
from servers import ADMIN_KEY


def _raw_stream(port: int, body: dict, behavior: str) -> tuple[dict[str, str], list[bytes]]:
    """POST over a raw socket; (headers, the chunks of the chunked body, in order)."""
    data = json.dumps(body).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
               b"Content-Type: application/json\r\nx-fake-behavior: " + behavior.encode()
               + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while part := sock.recv(65536):
            received += part
    head, _, rest = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), head
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["transfer-encoding"] == "chunked"
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return headers, chunks
        chunks.append(rest[:size])
        rest = rest[size + 2:]


def _events(chunk: bytes) -> list[bytes]:
    return [e.removeprefix(b"data: ") for e in chunk.split(b"\n\n") if e]


def test_events_that_arrive_together_leave_in_one_write(gateway):
    words = "one two three four five six"
    headers, chunks = _raw_stream(gateway.port, {
        "model": "gpt-4o-mini", "stream": True,
        "messages": [{"role": "user", "content": words}]}, "one-write")
    # The fake provider wrote the whole stream at once: the gateway read it at once and
    # wrote it on at once, the end included.
    assert len(chunks) == 1, [c[:80] for c in chunks]
    events = _events(chunks[0])
    assert events[-1] == b"[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    # The caller did not ask for usage: the gateway asked, and took it out again.
    assert all("usage" not in c and c["choices"] for c in parsed)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in parsed)
    assert text == f"Echo: {words}"
    rec = gateway.record(headers["helicone-id"])
    assert rec["status"] == 200 and rec["completion_tokens"] > 0
    assert rec["response"]["choices"][0]["message"]["content"] == text
    assert rec["ttft_ms"] is not None and 0 < rec["ttft_ms"] <= rec["latency_ms"]


def test_events_that_arrive_apart_leave_apart(gateway):
    _, chunks = _raw_stream(gateway.port, {
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "a b c"}]}, "chunk-delay-100")
    events = [e for c in chunks for e in _events(c)]
    # The events came 100 ms apart: relayed as they came, not held for the end (a
    # loaded machine may still read two at once now and then).
    assert len(events) >= 6 and len(chunks) >= len(events) // 2
    usage = [json.loads(e)["usage"] for e in events[:-1]]
    assert usage[-1]["completion_tokens"] > 0 and all(u is None for u in usage[:-1])


def test_sdk_reads_a_stream_written_at_once(gateway, openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "all at once"}],
        extra_headers={"x-fake-behavior": "one-write"})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Echo: all at once"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert isinstance(stream, openai.Stream)
