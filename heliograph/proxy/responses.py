"""`POST /v1/responses`: OpenAI's Responses API, passed through to providers that speak
it (OpenAI, Azure), through the same pipeline as chat: auth, Helicone headers, fallback
chain and retries, the log record with usage and cost.

Its wire format differs from chat only on the way out, so it is a front whose body
translation is the identity: a stream is typed events (`event: response.output_text.delta`)
ending with `response.completed` and no [DONE], and what is logged for a stream is the
final response object that event carries (heliograph.formats.responses).
"""

from __future__ import annotations

from heliograph.formats.responses.events import ResponsesAccumulator, ResponsesStream
from heliograph.proxy.fronts import OpenAIFront


class ResponsesFront(OpenAIFront):
    name = "responses"

    def stream(self) -> ResponsesStream:
        return ResponsesStream()

    def accumulator(self, strip_usage: bool) -> ResponsesAccumulator:
        return ResponsesAccumulator()


RESPONSES = ResponsesFront()

