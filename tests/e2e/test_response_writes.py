"""A response whose body is ready when it starts goes out in one write: its head and body
in one TCP segment, not two (uvicorn writes the head at `http.response.start` and the
body at the next send; each write was a syscall and a segment for both sides).

Counted on the caller's socket by the kernel (TCP_INFO's tcpi_data_segs_in: segments that
carried data), on a real gateway over loopback."""

from __future__ import annotations

import json
import socket
import struct
import sys

import pytest
from servers import Gateway, raw_chat_post

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in is the u32 at byte 152 (Linux 4.6+).
_DATA_SEGS_IN = 152


@pytest.fixture(scope="module")
def gw(upstream, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("writes")
    gateway = Gateway(workdir, upstream.url, f"sqlite:///{workdir / 'gw.db'}")
    yield gateway
    gateway.stop()


def _data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < _DATA_SEGS_IN + 4:
        pytest.skip("this kernel's tcp_info has no tcpi_data_segs_in")
    return struct.unpack_from("I", info, _DATA_SEGS_IN)[0]


def _exchange(port: int, body: dict, extra: str = "") -> tuple[bytes, int]:
    """One request on a fresh connection; (the whole response, data segments it took)."""
    return raw_chat_post(port, body, extra, _data_segments_in)


def test_a_plain_answer_is_one_segment(gw):
    response, segments = _exchange(gw.port, {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert response.startswith(b"HTTP/1.1 200 ")
    head, _, body = response.partition(b"\r\n\r\n")
    assert json.loads(body)["object"] == "chat.completion"
    assert segments == 1, f"head and body came in {segments} segments"


def test_a_stream_all_here_at_once_goes_out_with_its_head(gw):
    # The provider writes the whole stream at once (one-write): the gateway relays it in
    # one read, so head, events and the chunked end go out together. Its own head and
    # that write may still reach the gateway in two reads (the head then goes out alone
    # while the relay waits): of five streams, at least one must be a single segment.
    fewest = None
    for _ in range(5):
        response, segments = _exchange(gw.port, {
            "model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "hi"}]},
            extra="x-fake-behavior: one-write\r\n")
        assert response.startswith(b"HTTP/1.1 200 ")
        assert b"transfer-encoding: chunked" in response.lower()
        assert b"data: [DONE]" in response and response.endswith(b"0\r\n\r\n")
        fewest = segments if fewest is None else min(fewest, segments)
    assert fewest == 1, f"every stream's head went out apart from its events ({fewest})"
