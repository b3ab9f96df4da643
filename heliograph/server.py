"""The HTTP server: uvicorn, with the limits a production server sets.

uvicorn's httptools protocol has no cap on request-header size (a 100 MB header cost a
worker ~200 MB and stalled its loop for seconds), never times out a connection that
has not finished its first request (slowloris), and accepts sockets until the process
runs out of descriptors (then every accept, database file and upstream call fails).
GuardedHttpToolsProtocol adds those three limits at the cheapest places:

- header bytes: the raw bytes of reads that end with the head still incomplete are
  counted (httptools buffers a header value until it ends, so its callbacks would see a
  100 MB value too late); a head that completes within a read is measured from the
  parsed url and headers, and only when the read itself was larger than the limit;
- a deadline timer runs only while a head or a body is incomplete after a read — a
  request that arrives whole in one read (the usual case) never arms one;
- past max_connections a new connection is answered 503 and closed at once.

The listening socket is bound here, before workers start, so "listening on" is printed
only once the port is really ours, and a port in use is a one-line error.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess

from heliograph import deep_json
from heliograph.config import Settings, worker_settings

APP = "heliograph.app:create_app"

# Descriptors kept back from client connections: database, journal segments, Redis,
# the listening socket, log files. Each proxied request also holds an upstream socket.
RESERVED_DESCRIPTORS = 64


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10
    body_timeout_s: float = 60
    max_connections: int = 4096


class ListenError(Exception):
    """The port cannot be bound (in use, not permitted, no such address)."""


class GatewayConfig(uvicorn.Config):
    """uvicorn's Config carrying our limits to the protocol (it is pickled to workers)."""

    def __init__(self, app: Any, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(app, **kwargs)
        self.limits = limits

    def load(self) -> None:
        super().load()
        self.loaded_app = forwarded_when_sent(self.loaded_app, self.forwarded_allow_ips)


async def _scope_rewritten(scope: Any, receive: Any, send: Any) -> None:
    """The app behind the proxy-headers middleware that App runs on its own: the
    middleware's work is the scope it rewrites, the request goes on in App."""


def forwarded_when_sent(loaded_app: Any, trusted_hosts: list[str] | str) -> Any:
    """uvicorn wraps every app in its ProxyHeadersMiddleware (proxy_headers, on by
    default): a coroutine frame on every request and its resumes, a trust check of the
    client address and a Python loop over the headers (~150 bytecodes a request, issue
    15), though only a request that carries X-Forwarded-For or X-Forwarded-Proto has
    anything in it to apply (/metrics' loopback check reads the client it sets, the
    dashboard the scheme). Our App is unwrapped and handed the same middleware, with the
    same trusted addresses (forwarded_allow_ips, FORWARDED_ALLOW_IPS), in front of a
    no-op: App runs it on the scope of such requests only, before anything reads it.
    Any other app, or a chain with more of uvicorn's middleware, is left as it was."""
    if not isinstance(loaded_app, ProxyHeadersMiddleware):
        return loaded_app
    app = loaded_app.app
    trust = getattr(app, "trust_forwarded", None)
    if trust is None:
        return loaded_app
    trust(ProxyHeadersMiddleware(_scope_rewritten, trusted_hosts=trusted_hosts))
    return app


_IDLE, _HEAD, _BODY = 0, 1, 2


def _raw_response(status: int, reason: str, message: str, error_type: str,
                  code: str) -> bytes:
    body = deep_json.dumps({"error": {"message": message, "type": error_type,
                                      "param": None, "code": code}})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits: ConnectionLimits = getattr(config, "limits", None) or ConnectionLimits()
        self._phase = _IDLE
        self._head_received = 0   # raw bytes of earlier reads that were all head
        # Bytes of the read in which the head began (an upper bound on its part of it):
        # a head split across reads has its first part there, counted by no whole read.
        self._head_began_bytes = 0
        self._chunk_size = 0      # bytes of the read being parsed
        self._began_in_read = False
        self._head_too_large = False
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_phase = _IDLE
        self._call_soon = self.loop.call_soon   # for HeadWithBody, bound once

    # -- connection -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._refuse(_raw_response(503, "Service Unavailable",
                                       "the gateway has too many open connections; retry "
                                       "shortly", "server_error", "too_many_connections"))
            return
        # The first request's head must arrive within header_timeout_s of connecting.
        self._arm(_HEAD, self._limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        phase_before = self._phase
        self._chunk_size = len(data)
        self._began_in_read = False
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._phase == _HEAD:
            # All of this read was head only if that head was already under way and no
            # (pipelined) message began in it.
            if phase_before == _HEAD and not self._began_in_read:
                self._head_received += len(data)
                if self._head_received > self._limits.max_header_bytes:
                    self._refuse_head()
                    return
            elif self._began_in_read:
                self._head_began_bytes = len(data)
            if self._deadline is None:
                self._arm(_HEAD, self._limits.header_timeout_s)
        elif self._phase == _BODY and self._deadline_phase != _BODY:
            self._arm(_BODY, self._limits.body_timeout_s)

    # -- parser callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self._head_received = 0
        self._head_began_bytes = 0
        self._began_in_read = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        # The head is at most what arrived while reading it; only when that bound is over
        # the limit (never for an ordinary request) is it measured exactly.
        limit = self._limits.max_header_bytes
        bound = self._head_began_bytes + self._head_received + self._chunk_size
        if bound > limit and self._head_size() > limit:
            # Raising stops the parser; uvicorn turns it into send_400_response (below).
            self._head_too_large = True
            raise HeadTooLarge()
        self._phase = _BODY
        if self._deadline_phase == _HEAD:
            self._disarm()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            # Duck-typed: the cycle calls only what HeadWithBody has.
            cycle.transport = HeadWithBody(  # type: ignore[assignment]
                self.transport, cycle, self._call_soon)
            if _ONE_STEP_HEAD:
                cycle.__class__ = OneStepHeadCycle

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        if self._deadline_phase == _BODY:
            self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    # -- refusals and deadlines -----------------------------------------------------------
    def _refuse_head(self) -> None:
        kb = self._limits.max_header_bytes // 1024
        self._refuse(_raw_response(
            431, "Request Header Fields Too Large",
            f"request line and headers are larger than {kb} KB ([server] max_header_kb)",
            "invalid_request_error", "request_header_fields_too_large"))

    def _refuse(self, response: bytes) -> None:
        self._disarm()
        self.transport.write(response)
        self.transport.close()

    def _arm(self, phase: int, seconds: float) -> None:
        self._disarm()
        self._deadline_phase = phase
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._deadline_phase = _IDLE

    def _deadline_passed(self) -> None:
        # A client this slow gets no answer: it is either gone or holding the socket on
        # purpose. Closing frees the descriptor; an app awaiting the body sees a disconnect.
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class HeadTooLarge(Exception):
    """Raised inside the parser to stop it at the end of an oversized head."""


_FRESH, _HELD, _OUT = 0, 1, 2


class HeadWithBody:
    """A response cycle's transport that writes the response's head with its first body.

    uvicorn writes the status line and headers at `http.response.start` and the body at
    the next send, and the event loop tries the socket at once: every response was two
    `write` syscalls and two TCP segments (the caller's side reads twice too). The gateway
    sends the body right after the start (a plain answer; a stream whose first events are
    already here), in the same step of its task: the head is held and goes out with that
    body in one write. If the task yields first (a stream waiting for the provider), the
    head is written at the end of the loop's step, as it would have been.

    Only what uvicorn's response cycle uses is here: write, close, is_closing. The
    "100 Continue" interim answer (written before the response starts) is not held.

    The cycle is looked at only until its head is here, and let go then: the cycle holds
    this object as its transport, so keeping it made every response's cycle (its scope,
    headers, events: 11 objects) garbage that only the cyclic GC frees. A young
    collection came every ~900 requests and took 2-3 ms of the loop, which wrk's
    latency correction counts once per request it could have served (bench/README.md,
    session 15, hLat). A response closed before its head (rare) still leaves one."""

    __slots__ = ("_transport", "_cycle", "_call_soon", "_state", "_head")

    def __init__(self, transport: asyncio.Transport, cycle: Any,
                 call_soon: Callable[[Callable[[], None]], object]) -> None:
        self._transport = transport
        self._cycle = cycle
        self._call_soon = call_soon
        self._state = _FRESH
        self._head = b""

    def write(self, data: bytes) -> None:
        state = self._state
        if state == _HELD:
            self._state = _OUT
            # One writev for both: no copy of the body.
            self._transport.writelines((self._head, data))
            self._head = b""
        elif state == _FRESH and self._cycle.response_started:
            self._state = _HELD
            self._head = data
            self._cycle = None
            self._call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        if self._state == _HELD:
            self._state = _OUT
            head, self._head = self._head, b""
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


# -- the response head in one step ------------------------------------------------------

_RESPONSE_CYCLE_SEND = httptools_impl.RequestResponseCycle.send
# uvicorn's two header checks as it ships them (each one character class; see
# _uvicorn_checks_are_character_classes).
_NAME_SOURCE = b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]'
_VALUE_SOURCE = b"[\x00-\x08\x0a-\x1f\x7f]"
_NAME_CHECK = re.compile(_NAME_SOURCE)
# The bytes the value check refuses: deleting them from the values joined (bytes.translate,
# a table lookup a byte) tells the same as a regex search of each value, at a third of
# the cost of one search of them all.
_BAD_VALUE_BYTES = bytes(b for b in range(256) if re.match(_VALUE_SOURCE, bytes((b,))))
# Headers whose value changes how uvicorn frames or ends the answer: left to its loop.
_FRAMING = frozenset({b"transfer-encoding", b"connection"})


class _PlainNames(set):
    """Response header names that need nothing of uvicorn's loop but its checks: valid
    (its name check finds nothing), lower-case already, not a framing header. The gateway
    answers the same few dozen names; emptied when full, as _KnownValid is."""

    LIMIT = 512

    def learn(self, names: tuple[Any, ...]) -> bool:
        """Whether every name is plain, remembering those that are."""
        for name in names:
            if name in self:
                continue
            if not (isinstance(name, bytes) and name == name.lower()
                    and _NAME_CHECK.search(name) is None and name not in _FRAMING):
                return False
            if len(self) >= self.LIMIT:
                self.clear()
            self.add(name)
        return True


_plain_names = _PlainNames()


class OneStepHeadCycle(httptools_impl.RequestResponseCycle):
    """uvicorn's response cycle, writing the head of an answer whose headers need nothing
    but its checks in a few C calls rather than a Python loop step per header.

    uvicorn checks each header name and value with a regex, lower-cases the name, compares
    it with content-length, transfer-encoding and connection, and appends four pieces:
    ~40 bytecodes a header, and a proxied answer has ~17 (Helicone-*, the provider's
    relayed x-ratelimit-*, openai-*, request ids; server, date, content type), which made
    uvicorn's send the largest Python function of a proxied call (issue 15). Here the
    names are looked up together in a set of names known plain (_PlainNames), the values
    checked joined, and the head is one join. Anything else — a name with a capital, a bad
    byte, transfer-encoding or connection among the headers, an access log, a paused or
    closed connection, every body — goes through uvicorn's own send, which answers or
    refuses it as it always has (tests/unit/test_one_step_head.py holds the two to the
    same bytes and state)."""

    async def send(self, message: Any) -> None:
        if (self.response_started or message["type"] != "http.response.start"
                or self.disconnected or self.flow.write_paused or self.access_log):
            await _RESPONSE_CYCLE_SEND(self, message)
            return
        headers = self.default_headers + list(message.get("headers", []))
        try:
            names, values = zip(*headers)
            joined = b"".join(values)
        except (TypeError, ValueError):   # no headers, or not pairs of bytes
            await _RESPONSE_CYCLE_SEND(self, message)
            return
        if (len(joined.translate(None, _BAD_VALUE_BYTES)) != len(joined)
                or not (_plain_names.issuperset(names) or _plain_names.learn(names))):
            await _RESPONSE_CYCLE_SEND(self, message)
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = message["status"]
        # What uvicorn's loop appends after the headers, in its order.
        if b"content-length" in names:  # the first one counts, as in uvicorn's loop
            self.expected_content_length = int(values[names.index(b"content-length")]
                                               .decode())
            self.chunked_encoding = False
            end = b"\r\n\r\n"
        elif self.scope["method"] != "HEAD" and status_code not in (204, 304):
            self.chunked_encoding = True
            end = b"\r\ntransfer-encoding: chunked\r\n\r\n"
        else:
            end = b"\r\n\r\n"
        if not self.keep_alive:
            end = b"\r\nconnection: close" + end
        self.transport.write(httptools_impl.STATUS_LINE[status_code]
                             + b"\r\n".join(map(b": ".join, headers)) + end)


def _uvicorn_checks_are_character_classes() -> bool:
    """OneStepHeadCycle's checks are uvicorn's only for the patterns it ships today (a value
    check that is one character class can look at the values joined); another version's
    patterns leave every head to uvicorn's own loop."""
    def source(check: Any) -> Any:   # a compiled pattern, or _KnownValid in front of one
        check = check.pattern if isinstance(check, _KnownValid) else check
        return getattr(check, "pattern", None)

    return (source(httptools_impl.HEADER_RE) == _NAME_SOURCE
            and source(httptools_impl.HEADER_VALUE_RE) == _VALUE_SOURCE)



# -- response header checks -------------------------------------------------------------

class _KnownValid(dict):
    """A response header's name or value check that remembers what passed.

    uvicorn checks every response header with two regex searches (its module's
    HEADER_RE and HEADER_VALUE_RE: no control characters, and no separators in a name),
    ~0.4 µs each; the gateway answers ~16 headers (Helicone-*, the provider's relayed
    x-ratelimit-*, openai-*, request ids), nearly all names and most values the same from
    one request to the next. `search` is this dict's own lookup, a C call: a name or value
    seen valid before answers None at once; anything else is searched by the regex as
    before, and remembered only when valid, so an invalid header is refused every time.
    Emptied when full: ids that never repeat cannot crowd out the ones that do for long;
    long texts (a cookie, a policy) are searched each time, so it stays under ~100 KB."""

    LIMIT = 512
    LONGEST = 160

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        super().__init__()
        self.pattern = pattern
        self._search = pattern.search
        self.search = self.__getitem__

    def __missing__(self, text: bytes) -> re.Match[bytes] | None:
        found = self._search(text)
        if found is None and len(text) <= self.LONGEST:
            if len(self) >= self.LIMIT:
                self.clear()
            self[text] = None
        return found


def remember_valid_headers() -> None:
    """Put _KnownValid in front of uvicorn's two header checks (its send() reads them
    from its module on each response). Idempotent; a uvicorn without them is left alone."""
    for name in ("HEADER_RE", "HEADER_VALUE_RE"):
        pattern = getattr(httptools_impl, name, None)
        if isinstance(pattern, re.Pattern):
            setattr(httptools_impl, name, _KnownValid(pattern))


remember_valid_headers()
_ONE_STEP_HEAD = _uvicorn_checks_are_character_classes()


# -- process setup ----------------------------------------------------------------------

def raise_descriptor_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (the default soft 1,024 is far below
    what a server with idle keep-alive clients needs); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, descriptor_limit: int) -> int:
    """Client connections per worker: the configured cap, lowered so that each can also
    hold an upstream socket without the process running out of descriptors."""
    return max(1, min(configured, (descriptor_limit - RESERVED_DESCRIPTORS) // 2))


def limits_for(settings: Settings, descriptor_limit: int) -> ConnectionLimits:
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=connection_cap(settings.max_connections, descriptor_limit))


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {host}:{port}: {reason.lower()}") from None
    sock.set_inheritable(True)
    return sock


class WebSocketOnFirstUpgrade:
    """uvicorn's WebSocket protocol, imported by the first upgrade request a worker gets.

    uvicorn imports its `ws` protocol (with the websockets package: ~1 MB RSS a worker)
    when it loads its config, yet the gateway only ever answers an upgrade with a 400
    (asgi.refuse_websocket), which needs uvicorn's protocol to reach the app. Instantiated
    once per upgrade, this builds the real protocol in its place."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

        assert AutoWebSocketsProtocol is not None   # websocket_protocol() looked
        return AutoWebSocketsProtocol(*args, **kwargs)


def websocket_protocol() -> type | str:
    """What uvicorn's `ws` setting gets: the protocol on first upgrade where uvicorn's
    "auto" would find a library (uvicorn[standard] brings websockets), else "none" as it
    would fall back to (found without importing it)."""
    if find_spec("websockets") is None and find_spec("wsproto") is None:
        return "none"
    return WebSocketOnFirstUpgrade


def gateway_config(settings: Settings, limits: ConnectionLimits) -> GatewayConfig:
    return GatewayConfig(
        APP, limits=limits, factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_level="warning", access_log=False, loop="auto",
        http=GuardedHttpToolsProtocol, ws=websocket_protocol(),
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keepalive_timeout_s, backlog=settings.backlog)


def run(settings: Settings, on_listening: Callable[[ConnectionLimits], None],
        remove_at_exit: tuple[str, ...] = ()) -> None:
    """Bind, report, then serve with settings.workers uvicorn workers until stopped.
    Several workers: this process becomes heliograph/supervisor.py's small master, which
    forks them (serve_worker); `remove_at_exit` are folders it removes when it stops."""
    limits = limits_for(settings, raise_descriptor_limit())
    config = gateway_config(settings, limits)
    sock = bind_socket(settings.host, settings.port, settings.backlog)
    on_listening(limits)
    if settings.workers > 1:
        if hasattr(os, "fork"):
            from heliograph.supervisor import exec_supervisor

            exec_supervisor(sock, settings.workers, list(remove_at_exit))
        server = uvicorn.Server(config)  # no fork: uvicorn's supervisor spawns them
        # Newer uvicorn supervisors build each worker's Server themselves.
        if "target" in inspect.signature(Multiprocess).parameters:
            Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
        else:
            Multiprocess(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)


def serve_worker(sock: socket.socket, master_pid: int, master_watch_fd: int = -1) -> int:
    """A worker forked by heliograph/supervisor.py: the settings `serve` exported, uvicorn
    on the inherited socket until SIGTERM; 3 when the app could not start.
    master_watch_fd: the read end of the master's watch pipe (exit_with_master)."""
    from heliograph.background import supervisor as host_supervisor

    host_supervisor.MASTER_PID = master_pid  # the worker exits with it (exit_with_master)
    host_supervisor.MASTER_WATCH_FD = master_watch_fd
    settings = worker_settings()
    server = uvicorn.Server(gateway_config(settings,
                                           limits_for(settings, raise_descriptor_limit())))
    server.run(sockets=[sock])
    return 0 if server.started else 3
