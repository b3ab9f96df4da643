"""Server limits on real sockets: what one client (or a thousand) may cost a worker.

The gateway is started with a soft descriptor limit of 1,024 (a common default): it
must lift it itself, keep serving /healthz and chat while 1,100 idle sockets and a few
slowloris clients are open, close them after [server] header_timeout_s, refuse an
oversized head with 431 without stalling, and close a connection whose body stalls."""

from __future__ import annotations

import re
import resource
import select
import socket
import sys
import time
import urllib.request

import openai
import pytest
from servers import ADMIN_KEY, Gateway, spawn_logged, wait_port

HEADER_TIMEOUT_S = 8
BODY_TIMEOUT_S = 2
KEEPALIVE_TIMEOUT_S = 1


def _soft_descriptor_limit_1024():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


class LowDescriptorGateway(Gateway):
    """`heliograph serve` started under a soft RLIMIT_NOFILE of 1,024."""

    def start(self) -> None:
        self.proc = spawn_logged(
            [sys.executable, "-m", "heliograph", "serve", "--config", str(self.config_path),
             "--port", str(self.port), "--workers", str(self.workers)],
            self.log, env=self.env, cwd=self.workdir, start_new_session=True,
            preexec_fn=_soft_descriptor_limit_1024)
        wait_port(self.port, self.proc, self.log, 30)
        self._wait_healthy(30)


@pytest.fixture(scope="module")
def limited(upstream, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limits")
    gw = LowDescriptorGateway(workdir, upstream.url, f"sqlite:///{workdir / 'gw.db'}",
                              extra_config=f"""
[server]
header_timeout_s = {HEADER_TIMEOUT_S}
body_timeout_s = {BODY_TIMEOUT_S}
keepalive_timeout_s = {KEEPALIVE_TIMEOUT_S}
max_header_kb = 64
""")
    yield gw
    gw.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _healthz(gw: Gateway, timeout: float = 10) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(gw.url + "/healthz", timeout=timeout) as resp:
        assert resp.status == 200
    return time.monotonic() - started


def _chat(gw: Gateway) -> str:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0,
                           timeout=20)
    reply = client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "ping"}])
    return reply.choices[0].message.content


def _closed(sock: socket.socket) -> bool:
    """The server closed (EOF or reset) — without blocking."""
    poller = select.poll()  # select() cannot watch descriptors above 1,023
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(65536) == b"" or True
    except OSError:
        return True


def test_a_thousand_idle_sockets_and_slowloris_clients_do_not_stop_the_gateway(limited):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    opened = time.monotonic()
    idle = [_connect(limited.port) for _ in range(1100)]
    slow = [_connect(limited.port) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    try:
        probe_s = _healthz(limited)
        assert _chat(limited) == "Echo: ping"
        opened_for = time.monotonic() - opened
        assert opened_for < HEADER_TIMEOUT_S, "too slow to prove anything: sockets expired"
        assert not any(_closed(sock) for sock in idle[-50:])  # still held open by the server
        # Slowloris: a byte a second never completes a head; the head deadline still holds.
        deadline = opened + HEADER_TIMEOUT_S + 6
        while time.monotonic() < deadline:
            for sock in slow:
                try:
                    sock.sendall(b"s")
                except OSError:
                    pass
            if all(_closed(sock) for sock in slow + idle[:: 50]):
                break
            time.sleep(1)
        closed_after = time.monotonic() - opened
        assert all(_closed(sock) for sock in slow), "slowloris connections still open"
        assert all(_closed(sock) for sock in idle), "idle connections never closed"
        assert closed_after >= HEADER_TIMEOUT_S - 1
        print(f"\n1,100 idle + 20 slowloris: /healthz in {probe_s * 1000:.0f} ms; "
              f"all closed {closed_after:.1f} s after opening")
    finally:
        for sock in idle + slow:
            sock.close()
    _healthz(limited)


def test_a_one_megabyte_header_is_refused_quickly_and_the_worker_keeps_serving(limited):
    started = time.monotonic()
    sock = _connect(limited.port)
    answer = b""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (1 << 20)
                     + b"\r\n\r\n")
        answer = sock.recv(65536)
    except OSError:
        pass  # refused by closing before we finished writing: also a refusal
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert elapsed < 2, elapsed
    # A head over the limit that arrives in a single read: still 431, with an error body.
    with _connect(limited.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 70_000
                     + b"\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"code":"request_header_fields_too_large"' in answer
    assert _healthz(limited) < 2
    print(f"\n1 MB header refused in {elapsed * 1000:.0f} ms")


def test_a_head_over_the_limit_in_two_reads_is_refused(limited):
    """The head's first part arrives in the read where the request begins, the rest in a
    later one: both parts count (the first used to be left out, and a 70 KB head sent as
    60 KB + 10 KB was served)."""
    with _connect(limited.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 60_000)
        time.sleep(0.3)   # the server reads the first part on its own
        sock.sendall(b"a" * 10_000 + b"\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert _healthz(limited) < 2


def test_headers_under_the_limit_are_served(limited):
    request = urllib.request.Request(limited.url + "/healthz",
                                     headers={"X-Padding": "a" * 60_000})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def _read_whole_answer(sock) -> bytes:
    """Head and body of one answer: under load they can arrive in separate reads, and a
    body left unread would look like data on a connection that should be idle."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return answer


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(limited):
    with _connect(limited.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _read_whole_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        answered = time.monotonic()
        sock.settimeout(KEEPALIVE_TIMEOUT_S + 5)
        assert sock.recv(10) == b""
        assert time.monotonic() - answered < KEEPALIVE_TIMEOUT_S + 3


def test_a_connection_that_never_sends_is_closed_after_the_header_timeout(limited):
    with _connect(limited.port) as sock:
        opened = time.monotonic()
        sock.settimeout(HEADER_TIMEOUT_S + 5)
        assert sock.recv(10) == b""
        assert HEADER_TIMEOUT_S - 1 <= time.monotonic() - opened < HEADER_TIMEOUT_S + 3


def test_a_stalled_body_is_cut_after_the_body_timeout(limited):
    with _connect(limited.port) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"mo")
        sent = time.monotonic()
        sock.settimeout(BODY_TIMEOUT_S + 5)
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:
            pass
        assert BODY_TIMEOUT_S - 1 <= time.monotonic() - sent < BODY_TIMEOUT_S + 3
    assert _chat(limited) == "Echo: ping"


def test_connections_beyond_the_cap_are_refused_while_the_rest_are_served(upstream,
                                                                          tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}",
                 extra_config="[server]\nmax_connections = 20\n")
    held: list[socket.socket] = []
    try:
        held = [_connect(gw.port) for _ in range(20)]
        with _connect(gw.port) as extra:
            answer = extra.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"too_many_connections" in answer
        for sock in held[:5]:
            sock.close()
        time.sleep(0.2)
        assert _healthz(gw) < 5
    finally:
        for sock in held:
            sock.close()
        gw.stop()

