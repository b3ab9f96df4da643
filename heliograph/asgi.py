"""Minimal ASGI helpers. The gateway speaks raw ASGI: on the proxy's hot path every
microsecond of framework overhead is paid on every request."""

from __future__ import annotations

from urllib.parse import parse_qsl

from heliograph import deep_json
from heliograph.errors import BadRequest, GatewayError, PayloadTooLarge

JSON_HEADERS = [(b"content-type", b"application/json")]


def is_whole_number(text: str) -> bool:
    """A whole number int() takes and no header or query needs more of: ASCII digits
    only (str.isdigit alone also accepts superscripts and other digits int() refuses),
    and at most 18 of them (int() refuses thousands of digits, and anything over 18
    digits is out of every range we check)."""
    return len(text) <= 18 and text.isascii() and text.isdigit()


class Request:
    __slots__ = ("scope", "receive", "path", "method", "headers", "_query")

    def __init__(self, scope, receive):
        self.scope = scope
        self.receive = receive
        self.path: str = scope["path"]
        self.method: str = scope["method"]
        # ASGI header names are already lower-case bytes; decode once.
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1")
                                        for k, v in scope["headers"]}
        self._query = None

    @property
    def query(self) -> list[tuple[str, str]]:
        if self._query is None:
            self._query = parse_qsl(self.scope.get("query_string", b"").decode("latin-1"),
                                    keep_blank_values=True)
        return self._query

    async def body(self, limit: int) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):  # else there is nothing left to read
                    await self._discard_rest(size)
                raise PayloadTooLarge(f"request body is larger than the "
                                      f"{limit / (1024 * 1024):g} MB limit "
                                      "([limits] max_body_mb)")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _discard_rest(self, size: int) -> None:
        """Read (and drop) the rest of an oversized body, up to a bound, so a client that
        writes its whole body before reading gets the 413 instead of a broken pipe."""
        declared = self.headers.get("content-length", "")
        if is_whole_number(declared) and int(declared) > DISCARD_LIMIT:
            return
        while size <= DISCARD_LIMIT:
            message = await self.receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            size += len(message.get("body", b""))


# An oversized body up to this size is drained before the 413 is sent; beyond it the
# connection is simply answered and closed.
DISCARD_LIMIT = 64 * 1024 * 1024


class ClientDisconnected(Exception):
    """The caller went away before we answered."""


def client_gone(receive) -> bool:
    """Whether the server already knows the caller disconnected, without waiting and
    without a task: one synchronous step of receive(). Once the body is read, the only
    message left is the disconnect; a server that has seen it returns it at once
    (uvicorn does), otherwise the step suspends and is dropped here (closing it removes
    its waiter), and the caller counts as present.

    Under uvicorn, receive is a bound method of the request's cycle, whose `disconnected`
    is that very answer: read directly, it costs an attribute instead of a coroutine, an
    Event.wait future and its cleanup on every plain answer (pipeline._relay_json)."""
    known = getattr(getattr(receive, "__self__", None), "disconnected", None)
    if known is True or known is False:
        return known
    step = receive()
    try:
        step.send(None)
    except StopIteration as done:
        message = done.value
        return isinstance(message, dict) and message.get("type") == "http.disconnect"
    except Exception:  # a server's own oddity: assume the caller is there
        return False
    finally:
        step.close()
    return False


def encode_headers(headers: dict[str, str] | list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in items]


async def send_bytes(send, status: int, body: bytes,
                     headers: list[tuple[bytes, bytes]] | None = None,
                     content_type: bytes = b"application/json") -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, status: int, payload, headers=None) -> None:
    await send_bytes(send, status, deep_json.dumps(payload), headers)


async def send_error(send, error: GatewayError, extra_headers=None) -> None:
    headers = encode_headers(error.headers)
    if extra_headers:
        headers.extend(extra_headers)
    await send_bytes(send, error.status, error.body_bytes(), headers)


# RFC 6455 close code "policy violation": the endpoint does not take this connection.
WS_POLICY_VIOLATION = 1008


async def refuse_websocket(scope, receive, send) -> None:
    """The gateway has no WebSocket endpoint: a 400 with an OpenAI-shaped body where the
    server lets an app answer the upgrade with HTTP, else a close with 1008. Returning
    without either made uvicorn log an ERROR and answer a bare 500."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return  # the client is already gone
    error = BadRequest(f"WebSocket is not supported on {scope.get('path', '/')}; "
                       "use HTTP (streaming answers come as server-sent events)",
                       code="websocket_not_supported")
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 400,
                    "headers": JSON_HEADERS})
        await send({"type": "websocket.http.response.body", "body": error.body_bytes()})
    else:
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION,
                    "reason": error.message[:120]})
