"""A finished response leaves no cyclic garbage behind: uvicorn's response cycle is freed
by its reference count when its request ends, not left for the cyclic GC.

The gateway's own protocol (GuardedHttpToolsProtocol, with HeadWithBody as each cycle's
transport) on a real socket, a real client on one keep-alive connection: plain answers,
streamed ones and one after "100 Continue". The collector is off while they are served,
then one collection keeps what it found unreachable (DEBUG_SAVEALL): no response cycle
and no HeadWithBody may be among it. When HeadWithBody kept its cycle, every request
left 11 such objects, and a young collection of them took milliseconds of the loop."""

import asyncio
import gc
import socket

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from heliograph.server import HeadWithBody
from tests.servers import guarded_uvicorn


async def app(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await asyncio.sleep(0)   # the head goes out alone, as when a provider is slow
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def port():
    with guarded_uvicorn(app) as port:
        yield port


def _read_answer(sock: socket.socket, buf: bytes) -> bytes:
    """Read one answer (content-length or chunked); what is left of the buffer."""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].lower()
            if b"content-length: 2" in head and len(buf) >= head_end + 6:
                assert buf[head_end + 4:head_end + 6] == b"ok"
                return buf[head_end + 6:]
            end = buf.find(b"\r\n0\r\n\r\n", head_end)
            if b"transfer-encoding: chunked" in head and end >= 0:
                assert b"data: [DONE]" in buf[:end]
                return buf[end + 7:]
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk


def _serve_some(port: int) -> None:
    plain = (b"POST /plain HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}")
    stream = (b"POST /stream HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}")
    continued = (b"POST /plain HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n"
                 b"expect: 100-continue\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buf = b""
        for _ in range(20):
            for request in (plain, stream):
                sock.sendall(request)
                buf = _read_answer(sock, buf)
        sock.sendall(continued)
        while b"100 Continue\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        buf = buf.split(b"100 Continue\r\n\r\n", 1)[1]
        sock.sendall(b"{}")
        _read_answer(sock, buf)


def test_answers_leave_no_response_cycle_to_the_collector(port):
    _serve_some(port)   # the server's first requests create what lives on (imports, caches)
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        _serve_some(port)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage
                if isinstance(o, (RequestResponseCycle, HeadWithBody))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert left == []
