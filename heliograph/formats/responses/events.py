"""OpenAI's Responses API stream: typed events (`event: response.output_text.delta`)
ending with a terminal event (`response.completed`…) and no [DONE]. Here: the end
marker the pipeline needs, the renderer that restores event names for the caller, and
the accumulator that reads usage, model and the final response for the log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from heliograph.errors import GatewayError
from heliograph.formats.openai.chunk_fields import member, text
from heliograph.proxy.front import process_each, render_each
from heliograph.proxy.streaming import event_object

# The events that end a Responses API stream (it has no [DONE] of its own).
TERMINAL_EVENTS = ("response.completed", "response.failed", "response.incomplete")
_TERMINAL_BYTES = tuple(f'"{t}"'.encode() for t in TERMINAL_EVENTS)


async def responses_batches(batches: AsyncIterator[list[bytes]]
                            ) -> AsyncIterator[list[bytes]]:
    """A Responses API stream's payload batches, b"[DONE]" appended once a terminal event
    came, so the pipeline tells a finished stream from a cut one as it does for chat."""
    finished = False
    async for batch in batches:
        # A cheap byte test first; only a likely terminal event is parsed to be sure.
        if not finished:
            finished = any(_terminal(payload) for payload in batch)
        if finished:
            batch.append(b"[DONE]")
            yield batch
            return
        yield batch


def _terminal(payload: bytes) -> bool:
    if not any(t in payload for t in _TERMINAL_BYTES):
        return False
    try:
        return orjson.loads(payload).get("type") in TERMINAL_EVENTS
    except (orjson.JSONDecodeError, AttributeError):
        return False


class ResponsesStream:
    """Renders Responses API event payloads for the caller, event names restored. The
    terminal event is held back until `finish`: the pipeline first stores the response
    (Front.keep), so a caller who saw `response.completed` can use its id at once."""

    content_type = b"text/event-stream; charset=utf-8"

    def __init__(self):
        self.final: dict | None = None
        self._held = b""
        self._next_sequence = 0  # an in-band error event continues the numbering

    def render(self, payload: bytes) -> bytes:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return b"data: " + payload + b"\n\n"
        kind = event.get("type") if isinstance(event, dict) else None
        if isinstance(event, dict) and isinstance(event.get("sequence_number"), int):
            self._next_sequence = event["sequence_number"] + 1
        name = b"event: " + str(kind).encode() + b"\n" if kind else b""
        if kind in TERMINAL_EVENTS:
            self.final = event.get("response")
            self._held = name + b"data: " + payload + b"\n\n"
            return b""
        return name + b"data: " + payload + b"\n\n"

    def render_batch(self, payloads: list[bytes]) -> bytes:
        return render_each(self, payloads)

    def finish(self) -> bytes:
        return self._held

    def error(self, error: GatewayError) -> bytes:
        event = {"type": "error", "code": error.code, "message": error.message, "param": None,
                 "sequence_number": self._next_sequence}
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"

    def logged(self, completion: dict) -> dict:
        return self.final or completion


class ResponsesAccumulator:
    """What the pipeline needs from a Responses stream: usage and model for the record,
    the first output for time to first token, the end, and the response to log."""

    def __init__(self):
        self.usage: dict | None = None
        self.model: str | None = None
        self.saw_content = False
        self.done = False
        self._response: dict | None = None
        self._text: list[str] = []

    def process(self, payload: bytes) -> bytes | None:
        if payload == b"[DONE]":
            self.done = True
            return payload
        event = event_object(payload)
        if event is None:
            return payload
        # Relayed as it came, read leniently (chunk_fields): a member of the wrong type (a
        # list type, a list model, a string usage) reads as absent.
        kind = text(event, "type") or ""
        response = event.get("response")
        if isinstance(response, dict):
            self._response = response
            self.model = text(response, "model") or self.model
            self.usage = member(response, "usage") or self.usage
        if kind.endswith(".delta"):
            self.saw_content = True
            if kind == "response.output_text.delta":
                self._text.append(text(event, "delta") or "")
        return payload

    def process_batch(self, batch: list[bytes]) -> list[bytes]:
        return process_each(self, batch)

    def completion(self) -> dict:
        """The final response object; for a cut stream, the text received so far."""
        response = dict(self._response or {"object": "response"})
        if response.get("status") not in ("completed", "failed", "incomplete"):
            response["output"] = [{"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "".join(self._text)}]}]
        return response
