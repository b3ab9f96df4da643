"""A provider header the caller gets (x-request-id, openai-*, x-ratelimit-*...) reaches it
as the bytes the provider sent, also when they are not ASCII: before, the value went
through str and back as latin-1, so UTF-8 text arrived changed (café as caf\\xe9) and a
character beyond latin-1 (€) failed the whole answer. A real gateway, a provider on a raw
socket, the caller on a raw socket."""

from __future__ import annotations

import json
import socketserver
import threading

import pytest
from servers import Gateway, raw_chat_post

COMPLETION = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
STREAM = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,'
          b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"hi"},'
          b'"finish_reason":null}]}\n\n'
          b'data: {"id":"c","object":"chat.completion.chunk","created":1,'
          b'"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":1,'
          b'"completion_tokens":1,"total_tokens":2}}\n\n'
          b"data: [DONE]\n\n")
RELAYED = [(b"x-request-id", "req-café".encode()), (b"openai-note", "5 €".encode()),
           (b"x-ratelimit-limit-requests", b"100")]


class _Provider(socketserver.BaseRequestHandler):
    """Answers each request on the connection with a completion (or a stream when asked
    for text/event-stream) and the RELAYED headers."""

    def handle(self) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                part = self.request.recv(65536)
                if not part:
                    return
                buffer += part
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            length = next((int(line.split(b":")[1]) for line in lines
                           if line.startswith(b"content-length:")), 0)
            while len(buffer) < length:
                buffer += self.request.recv(65536)
            buffer = buffer[length:]
            streamed = b"accept: text/event-stream" in lines
            body = STREAM if streamed else COMPLETION
            kind = b"text/event-stream" if streamed else b"application/json"
            out = [b"HTTP/1.1 200 OK", b"content-type: " + kind,
                   b"content-length: %d" % len(body)]
            out += [name + b": " + value for name, value in RELAYED]
            self.request.sendall(b"\r\n".join(out) + b"\r\n\r\n" + body)


@pytest.fixture(scope="module")
def gateway_to_raw_provider(tmp_path_factory):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Provider)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workdir = tmp_path_factory.mktemp("relayed-bytes")
    gateway = Gateway(workdir, f"http://127.0.0.1:{server.server_address[1]}",
                      f"sqlite:///{workdir / 'gw.db'}")
    try:
        yield gateway
    finally:
        gateway.stop()
        server.shutdown()
        server.server_close()


def _call(port: int, stream: bool) -> bytes:
    return raw_chat_post(port, {"model": "gpt-4o-mini", "stream": stream,
                                "messages": [{"role": "user", "content": "hi"}]})[0]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_relayed_headers_keep_the_providers_bytes(gateway_to_raw_provider, stream):
    response = _call(gateway_to_raw_provider.port, stream)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), response[:500]
    lines = head.split(b"\r\n")[1:]
    for name, value in RELAYED:
        assert name + b": " + value in lines, head
    assert b"hi" in body
    helicone_id = next(line.split(b": ", 1)[1] for line in lines
                       if line.lower().startswith(b"helicone-id:"))
    record = gateway_to_raw_provider.record(helicone_id.decode())
    assert record["status"] == 200
    assert record["ratelimit"] == {"limit_requests": "100"}
