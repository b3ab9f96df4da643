"""The caller's wire format. The pipeline speaks OpenAI's chat format in the middle; a
front translates the caller's request into it and the answer back out of it. OpenAI's own
front is the identity, so OpenAI callers get the provider's bytes untouched."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heliograph.errors import GatewayError
from heliograph.providers.sse import frame
from heliograph.proxy.front import StreamReader, StreamRenderer
from heliograph.proxy.streaming import StreamAccumulator

if TYPE_CHECKING:
    from heliograph.proxy.flow import Flow


class OpenAIStream:
    """Renders OpenAI chunk payloads for an OpenAI caller: as they are."""

    content_type = b"text/event-stream; charset=utf-8"

    # The SSE frame itself (a plain function: one call per event, not two).
    render = staticmethod(frame)

    @staticmethod
    def render_batch(payloads: list[bytes]) -> bytes:
        """One read's payloads framed with one join (no call per event)."""
        if not payloads:
            return b""
        return b"data: " + b"\n\ndata: ".join(payloads) + b"\n\n"

    def finish(self) -> bytes:
        return frame(b"[DONE]")

    def error(self, error: GatewayError) -> bytes:
        # Headers are already out: OpenAI reports mid-stream failures in-band like this.
        return frame(error.body_bytes())

    def logged(self, completion: dict) -> dict:
        return completion


class OpenAIFront:
    name = "openai"
    # Anthropic's SDK sends its key as x-api-key; OpenAI callers use Authorization.
    allow_x_api_key = False

    def to_openai(self, body: dict) -> dict:
        return body

    def response(self, parsed: dict, raw: bytes) -> tuple[bytes, object]:
        """(bytes to send, what to log as the response)."""
        return raw, parsed

    def error_body(self, error: GatewayError) -> bytes:
        return error.body_bytes()

    # Typed as the front protocols, not the concrete classes: subclasses (responses.py)
    # render and read streams with classes of their own.
    def stream(self) -> StreamRenderer:
        return OpenAIStream()

    def accumulator(self, strip_usage: bool) -> StreamReader:
        """Reads the stream for the log (usage, model, first token, the end)."""
        # OpenAIStream's render_batch only frames and joins what process_batch gives.
        return StreamAccumulator(strip_usage, framed=True)

    async def prepare(self, flow: Flow) -> None:
        pass

    async def keep(self, flow: Flow, answer: object) -> None:
        pass


OPENAI = OpenAIFront()
