"""What a caller-side front is: the caller's wire format around the OpenAI-format pipeline.

The fronts themselves live with their formats (fronts.py: OPENAI; anthropic_front.py:
ANTHROPIC, TOKEN_COUNT; responses.py: RESPONSES). These protocols are what the pipeline
and the cache replay rely on, so a new front is checked against them by mypy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from heliograph.errors import GatewayError

if TYPE_CHECKING:
    from heliograph.proxy.flow import Flow


class StreamRenderer(Protocol):
    """Turns the pipeline's OpenAI chunk payloads into the caller's stream."""

    content_type: bytes

    def render(self, payload: bytes) -> bytes: ...
    def render_batch(self, payloads: list[bytes]) -> bytes:
        """Several payloads at once (one upstream read's): what render gives for each,
        joined (`render_each` does it one by one)."""
        ...
    def finish(self) -> bytes: ...
    def error(self, error: GatewayError) -> bytes:
        """An in-band error: the headers are already out."""
        ...
    def logged(self, completion: dict) -> object:
        """What to log as the response of a finished (or cut) stream."""
        ...


class StreamReader(Protocol):
    """Reads the stream for the log: usage, model, first content, the end."""

    usage: dict | None
    model: str | None
    saw_content: bool
    done: bool

    def process(self, payload: bytes) -> bytes | None:
        """The payload to forward (maybe rewritten), or None to drop it."""
        ...
    def process_batch(self, batch: list[bytes]) -> list[bytes]:
        """process() over one upstream read's payloads up to [DONE] (then `done`; the rest
        is ignored): the payloads to forward (`process_each` does it one by one)."""
        ...
    def completion(self) -> dict: ...


def process_each(reader: StreamReader, batch: list[bytes]) -> list[bytes]:
    """StreamReader.process_batch, payload by payload."""
    out = []
    for payload in batch:
        kept = reader.process(payload)
        if reader.done:
            break
        if kept is not None:
            out.append(kept)
    return out


def render_each(renderer: StreamRenderer, payloads: list[bytes]) -> bytes:
    """StreamRenderer.render_batch, payload by payload."""
    return b"".join([renderer.render(payload) for payload in payloads])


class Front(Protocol):
    name: str                   # Call.caller_format: adapters may send such bodies natively
    allow_x_api_key: bool       # the Anthropic SDK authenticates with x-api-key

    def to_openai(self, body: dict) -> dict:
        """The caller's body in the pipeline's format; a BadRequest when it is wrong."""
        ...
    def response(self, parsed: dict, raw: bytes) -> tuple[bytes, object]:
        """(bytes to send, what to log as the response) for an OpenAI-format answer."""
        ...
    def error_body(self, error: GatewayError) -> bytes: ...
    def stream(self) -> StreamRenderer: ...
    def accumulator(self, strip_usage: bool) -> StreamReader: ...
    async def prepare(self, flow: Flow) -> None:
        """Before routing, what needs the gateway's state (Responses: the conversation
        behind previous_response_id); may rewrite flow.openai_body."""
        ...
    async def keep(self, flow: Flow, answer: object) -> None:
        """After a successful answer is logged, before its last byte is sent (Responses:
        store it, so a follow-up that arrives at once finds it)."""
        ...
