"""A provider call's body goes out in the step that sends the request (eager_body).

aiohttp writes a request's body from a task of its own, started eagerly from Python 3.12;
on 3.11 the gateway's client starts that one task eagerly itself, so the request is on
the wire before the event loop's next turn rather than one turn later. These tests drive
the real HttpClient against a provider that is a plain socket server in a thread, on
asyncio's loop and on uvloop (the workers' loop)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import sys
import threading

import pytest
import uvloop

from heliograph.providers import eager_body, http

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          b'{"ok":true}')


class SocketProvider:
    """Accepts one connection and answers each request on it (head, then a body of its
    Content-Length) with ANSWER. Before reading request n it waits for `go[n]` when the
    test set one up; what each request's body hashed to is in `bodies`."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.go: dict[int, threading.Event] = {}
        self.bodies: list[tuple[int, str]] = []
        self.closed_by_client = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(ConnectionResetError):
            self._answer_requests()
        self.closed_by_client.set()

    def _answer_requests(self) -> None:
        conn, _ = self.listener.accept()
        self.conn = conn
        buffered = b""
        n = 0
        while True:
            if n in self.go:
                self.go[n].wait(10)
            while b"\r\n\r\n" not in buffered:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffered += chunk
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            digest = hashlib.sha256()
            got = len(buffered[:length])
            digest.update(buffered[:length])
            buffered = buffered[length:]
            while got < length:
                chunk = conn.recv(min(65536, length - got))
                if not chunk:
                    return
                digest.update(chunk)
                got += len(chunk)
            self.bodies.append((got, digest.hexdigest()))
            conn.sendall(ANSWER)
            n += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.conn is not None:
                self.conn.close()
        self.listener.close()


@pytest.fixture
def provider():
    server = SocketProvider()
    yield server
    server.close()


def run(loop_name: str, main):
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        return runner.run(main())


BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


def _seen_at_next_turn(provider: SocketProvider, loop_name: str,
                       busy: SocketProvider | None = None) -> bytes:
    """What the provider's socket holds when a callback scheduled just before a call
    runs, at the loop's next turn. `busy`: a provider that keeps another call of the
    same client waiting meanwhile (it answers only once the call is done)."""
    url = f"http://127.0.0.1:{provider.port}/v1/chat/completions"
    provider.go[1] = threading.Event()
    seen: list[bytes] = []

    def peek() -> None:
        assert provider.conn is not None
        try:
            seen.append(provider.conn.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            seen.append(b"")
        provider.go[1].set()

    async def calls():
        client = http.HttpClient(connect_timeout_s=5, read_timeout_s=5)
        headers = {"content-type": "application/json"}
        try:
            # The first call opens the kept-alive connection the second one reuses (a
            # new connection waits for its connect, and the loop turns meanwhile).
            await client.request("POST", url, headers, BODY)
            other = None
            if busy is not None:
                busy.go[0] = threading.Event()
                other = asyncio.ensure_future(client.request(
                    "POST", f"http://127.0.0.1:{busy.port}/slow", headers, BODY))
                while not busy.conn:        # connected, its request sent
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
            asyncio.get_running_loop().call_soon(peek)
            answer = await client.request("POST", url, headers, BODY)
            if other is not None:
                busy.go[0].set()
                assert (await other).status == 200
            return answer
        finally:
            await client.close()

    answer = run(loop_name, calls)
    assert answer.status == 200 and answer.body == b'{"ok":true}'
    assert provider.bodies == [(len(BODY), hashlib.sha256(BODY).hexdigest())] * 2
    return seen[0]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_body_is_on_the_wire_before_the_loops_next_turn(provider, loop_name):
    """The worker's one call in progress: the request (head and body) is in the
    provider's socket before the loop turns again."""
    seen = _seen_at_next_turn(provider, loop_name)
    assert seen.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert seen.endswith(b"\r\n\r\n" + BODY)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_with_another_call_in_progress_the_body_waits_for_the_next_turn(provider,
                                                                          loop_name):
    """Several calls in progress: the bodies are written together in the loop's next
    turn (one wake-up of the provider for all of them: more requests a second)."""
    busy = SocketProvider()
    try:
        assert _seen_at_next_turn(provider, loop_name, busy) == b""
    finally:
        busy.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_body_too_big_for_one_step_is_written_whole(provider, loop_name):
    """16 MB does not fit the socket's buffers: the eager first step stops where the
    writer waits for the provider to read, and a task goes on from there."""
    url = f"http://127.0.0.1:{provider.port}/upload"
    body = bytes(range(256)) * (16 * 4096)

    async def call():
        client = http.HttpClient(connect_timeout_s=5, read_timeout_s=10)
        try:
            if sys.version_info < (3, 12):
                client.session  # noqa: B018  (made in the loop: installs the factory)
                assert asyncio.get_running_loop().get_task_factory() is \
                    eager_body._task_factory
            return await client.request("POST", url, {}, body)
        finally:
            await client.close()

    answer = run(loop_name, call)
    assert answer.status == 200
    assert provider.bodies == [(len(body), hashlib.sha256(body).hexdigest())]


# uvloop (the workers' loop) closes a transport at once; asyncio's own loop would first
# flush what it buffered, which the loop's end then leaves unsent and the socket open.
@pytest.mark.parametrize("loop_name", ["uvloop"])
def test_a_call_cancelled_mid_upload_closes_its_connection(provider, loop_name, caplog):
    """The provider reads nothing: the upload waits for it until the caller gives up.
    Cancelling the call reaches the body writer where it waits, which closes the
    connection (it cannot be reused half written) and leaves no error unretrieved."""
    url = f"http://127.0.0.1:{provider.port}/upload"
    body = b"x" * (32 * 1024 * 1024)
    provider.go[0] = threading.Event()  # the provider does not read until the end

    async def call():
        client = http.HttpClient(connect_timeout_s=5, read_timeout_s=10)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request("POST", url, {}, body), 0.5)
        finally:
            await client.close()

    with caplog.at_level(logging.ERROR):
        run(loop_name, call)
    provider.go[0].set()
    assert provider.closed_by_client.wait(10)
    assert provider.bodies == []
    assert "never retrieved" not in caplog.text


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12+ starts aiohttp's "
                    "body writer eagerly itself: nothing is installed")
def test_the_factory_is_installed_once_and_leaves_a_foreign_one_alone():
    loop = asyncio.new_event_loop()
    try:
        assert eager_body.install(loop) and eager_body.install(loop)
        assert loop.get_task_factory() is eager_body._task_factory

        async def answer():
            return 42

        # Any other coroutine gets an ordinary task from it.
        task = loop.create_task(answer())
        assert type(task) is asyncio.Task and loop.run_until_complete(task) == 42

        other = asyncio.new_event_loop()
        try:
            def theirs(loop, coro, context=None):
                return asyncio.Task(coro, loop=loop, context=context)

            other.set_task_factory(theirs)
            assert not eager_body.install(other)
            assert other.get_task_factory() is theirs
        finally:
            other.close()
    finally:
        loop.close()
