"""Wire-format-agnostic misbehaviour: delays, resets, truncation, garbage, SSE.

Each wire-format module (openai_api, later anthropic/gemini) builds its own
bodies and error shapes and uses these helpers to deliver them badly.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Sequence

from aiohttp import web

from .behavior import COUNTER_KEY_HEADER, Behavior
from .state import STATE_KEY

# error_response(status, fast_retry) -> a ready wire-format error response
ErrorFactory = Callable[[int, bool], web.StreamResponse]

REDIRECT_PREFIX = "/redirected"
MALFORMED_BODY = b'{"id": "fake-malformed", "object": <<< this is not JSON'
# An event that parses but whose members have the wrong types: a proxy relaying and logging
# it must not trip over any of them.
WRONG_SHAPE_EVENT = (b'{"id":"fake-wrong-shape","object":"chat.completion.chunk","choices":['
                     b'{"index":0,"delta":"not an object"},'
                     b'{"index":[1],"delta":{"content":5,"role":["x"],"tool_calls":'
                     b'["no call",{"index":{},"id":7,"function":"no object"},'
                     b'{"index":0,"function":{"name":3,"arguments":{"a":1}}}]}},'
                     b'{"index":0,"delta":{"tool_calls":{"index":0}},"finish_reason":9},'
                     b'"no choice"],"usage":"none"}')
# The same for a legacy completions stream: choices with a list or string index, a text
# that is a number, a list model.
WRONG_SHAPE_COMPLETION_EVENT = (
    b'{"id":["x"],"object":"text_completion","model":["not a string"],"choices":['
    b'{"index":[1],"text":"x"},{"index":"a","text":"y","finish_reason":"stop"},'
    b'{"index":0,"text":5,"finish_reason":9},"no choice"],"usage":"none"}')
# The same for the Responses API's stream: an event whose type is a list and whose
# response has a list model and a string usage, a text delta that is no string.
WRONG_SHAPE_RESPONSES_EVENTS = (
    ("response.in_progress", b'{"type":["response.in_progress"],"response":'
                             b'{"model":["not a string"],"usage":"none","status":5}}'),
    ("response.output_text.delta", b'{"type":"response.output_text.delta","delta":["x"]}'),
)
# The same for a stream of typed events (Anthropic's): deltas of the wrong shape, sent
# once the first content block has started.
WRONG_SHAPE_TYPED_EVENTS = (
    ("content_block_delta", b'{"type":"content_block_delta","index":0,"delta":"not an object"}'),
    ("content_block_delta", b'{"type":"content_block_delta","index":[0],'
                            b'"delta":{"type":"text_delta","text":5}}'),
    ("content_block_delta", b'{"type":"content_block_delta","index":0,'
                            b'"delta":{"type":"text_delta","text":["x"]}}'),
    # A tool_use block no caller could run: its name a list, its id a number.
    ("content_block_start", b'{"type":"content_block_start","index":9,"content_block":'
                            b'{"type":"tool_use","id":3,"name":["n"],"input":{}}}'),
    ("content_block_delta", b'{"type":"content_block_delta","index":9,'
                            b'"delta":{"type":"input_json_delta","partial_json":"{}"}}'),
)
# The same for Gemini's stream: a GenerateContentResponse whose candidates, parts, usage
# and prompt feedback are of the wrong types (nothing in it is an answer).
WRONG_SHAPE_GEMINI_EVENT = (
    b'{"candidates":["no candidate",{"index":[0],"content":"not an object"},'
    b'{"index":0,"content":{"parts":"no list"},"finishReason":["STOP"]},'
    b'{"index":0,"content":{"parts":[5,"no part",{"text":5},{"functionCall":"no object"},'
    b'{"functionCall":{"name":3,"args":"no object"}},{"text":["x"],"thought":true}]}}],'
    b'"usageMetadata":"none","promptFeedback":"none","modelVersion":5,"responseId":["x"]}')


async def sleep_ms(ms: float | None) -> None:
    if ms:
        await asyncio.sleep(ms / 1000)


async def preamble(request: web.Request, b: Behavior, counter_default: str,
                   error_response: ErrorFactory) -> web.StreamResponse | None:
    """delay, then reset / redirect-<code> / status-<code> / fail-then-ok-<n>; None means
    carry on."""
    await sleep_ms(b.delay_ms)
    if b.reset:
        return reset_connection(request)
    if b.redirect is not None:
        target = request.url.with_path(REDIRECT_PREFIX + request.path)
        return web.Response(status=b.redirect, headers={"Location": str(target)})
    if b.status is not None:
        return _retry_after(error_response(b.status, False), b)
    if b.fail_then_ok is not None:
        key = request.headers.get(COUNTER_KEY_HEADER) or counter_default
        if request.app[STATE_KEY].bump(key) <= b.fail_then_ok:
            return _retry_after(error_response(429, True), b)
    return None


def _retry_after(response: web.StreamResponse, b: Behavior) -> web.StreamResponse:
    if b.retry_after_soon:
        response.headers.pop("retry-after-ms", None)
        response.headers["retry-after"] = "soon"
    return response


def reset_connection(request: web.Request) -> web.StreamResponse:
    """Drop the connection without a byte of response (RST where possible)."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (AttributeError, OSError):
            pass
        transport.abort()
    # Never sent: aiohttp swallows the ConnectionError writing to a closed transport.
    return web.Response()


def cut_connection(request: web.Request) -> None:
    """Close after flushing what was written (FIN, so the client sees a short body)."""
    if request.transport is not None:
        request.transport.close()


def malformed_json(headers: dict[str, str]) -> web.Response:
    return web.Response(status=200, body=MALFORMED_BODY, headers=headers,
                        content_type="application/json")


async def send_json(request: web.Request, body: bytes, headers: dict[str, str], *,
                    status: int = 200, truncated: bool = False,
                    stall_ms: int = 0) -> web.StreamResponse:
    """A JSON body, optionally cut or stalled half-way after the headers."""
    if not truncated and not stall_ms:
        return web.Response(status=status, body=body, headers=headers,
                            content_type="application/json")
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_type = "application/json"
    resp.content_length = len(body)
    await resp.prepare(request)
    half = max(1, len(body) // 2)
    await resp.write(body[:half])
    if truncated:
        cut_connection(request)
        return resp
    await sleep_ms(stall_ms)
    await resp.write(body[half:])
    return resp


async def open_sse(request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers=headers)
    resp.headers["content-type"] = "text/event-stream; charset=utf-8"
    resp.headers["cache-control"] = "no-cache"
    await resp.prepare(request)
    return resp


async def send_event(resp: web.StreamResponse, data: bytes, event: str | None = None) -> None:
    """One SSE event, written (and so flushed) on its own."""
    prefix = b"event: " + event.encode() + b"\n" if event else b""
    await resp.write(prefix + b"data: " + data + b"\n\n")


async def stream_events(request: web.Request, events: Sequence[tuple[str | None, bytes]],
                        b: Behavior, headers: dict[str, str], *, final: bytes | None = None,
                        separator: bytes = b"\n\n",
                        wrong_shape: Sequence[tuple[str | None, bytes]] | None = None
                        ) -> web.StreamResponse:
    """SSE delivery shared by the wire formats: ``truncated`` cuts after two events,
    ``malformed`` slips a non-JSON event after the first (``wrong-shape`` one of the
    wrong shape), ``stall-<ms>`` pauses after
    the first, ``chunk-delay-<ms>`` between the others; ``final`` (OpenAI's [DONE]) ends
    a complete stream. ``wrong_shape``: the format's own events of the wrong shape (else
    OpenAI's chunk, or Anthropic's typed events when the events are named)."""
    gap = b.chunk_delay_ms if b.chunk_delay_ms is not None else request.app[
        STATE_KEY].chunk_delay_ms
    resp = await open_sse(request, headers)
    if b.one_write:
        whole = b"".join((b"event: " + name.encode() + b"\n" if name else b"") + b"data: "
                         + data + separator for name, data in events)
        await resp.write(whole + (b"data: " + final + separator if final is not None else b""))
        return resp
    try:
        for i, (name, data) in enumerate(events):
            if b.truncated and i == 2:
                cut_connection(request)
                return resp
            prefix = b"event: " + name.encode() + b"\n" if name else b""
            await resp.write(prefix + b"data: " + data + separator)
            if i == 0 and b.malformed:
                await resp.write(prefix + b"data: " + MALFORMED_BODY + separator)
            # Typed streams: after the first block opened (message_start, then its start),
            # so the odd deltas name a block that exists.
            if b.wrong_shape and i == (1 if name else 0):
                odd = wrong_shape or (WRONG_SHAPE_TYPED_EVENTS if name
                                      else ((None, WRONG_SHAPE_EVENT),))
                for odd_name, odd_data in odd:
                    await resp.write((b"event: " + odd_name.encode() + b"\n" if odd_name
                                      else b"") + b"data: " + odd_data + separator)
            await sleep_ms(b.stall_ms if i == 0 and b.stall_ms else gap)
        if final is not None:
            await resp.write(b"data: " + final + separator)
    except ConnectionError:  # the client went away mid-stream
        pass
    return resp
