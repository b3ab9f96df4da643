"""The Anthropic Messages API in front (`POST /v1/messages`): what the `anthropic` SDK,
Claude Code and other Anthropic clients send, translated into the pipeline's OpenAI
format, and the OpenAI answer translated back into an Anthropic message. The
translations are heliograph.formats.anthropic's; this is the front the pipeline holds.

Requests routed to Anthropic itself do not depend on this translation: the Anthropic
adapter sends the caller's own body and hands back Anthropic's own answer
(`Call.caller_body`, `NATIVE_KEY`), which `response` and the stream renderer pass through.
What the translation to other providers leaves out, having no OpenAI equivalent:
`cache_control`, `top_k`, thinking blocks, server tools (web search, code execution…).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from heliograph.errors import GatewayError
from heliograph.formats.anthropic.answer_from_openai import error_object, to_anthropic_message
from heliograph.formats.anthropic.request_to_openai import to_openai
from heliograph.formats.anthropic.stream_from_openai import AnthropicStream
from heliograph.formats.openai.chat import bad_request as _bad
from heliograph.providers.base import NATIVE_KEY
from heliograph.proxy.streaming import StreamAccumulator

if TYPE_CHECKING:
    from heliograph.proxy.flow import Flow


class AnthropicFront:
    name = "anthropic"
    allow_x_api_key = True      # the Anthropic SDK sends its key as x-api-key

    def to_openai(self, body: dict) -> dict:
        return to_openai(body)

    def response(self, parsed: dict, raw: bytes) -> tuple[bytes, object]:
        native = parsed.get(NATIVE_KEY)
        message = native if isinstance(native, dict) else to_anthropic_message(parsed)
        return orjson.dumps(message), message

    def error_body(self, error: GatewayError) -> bytes:
        return orjson.dumps(error_object(error))

    def stream(self) -> AnthropicStream:
        return AnthropicStream()

    def accumulator(self, strip_usage: bool) -> StreamAccumulator:
        return StreamAccumulator(strip_usage)

    async def prepare(self, flow: Flow) -> None:
        pass

    async def keep(self, flow: Flow, answer: object) -> None:
        pass


ANTHROPIC = AnthropicFront()


class TokenCountFront(AnthropicFront):
    """`POST /v1/messages/count_tokens`: a Messages request without max_tokens, answered
    by the provider's count (Provider.count_tokens): Anthropic's own, or Gemini's
    countTokens; other providers have no counting endpoint (a 400). Nothing is
    translated here; the pipeline only needs the model to route on."""

    def to_openai(self, body: dict) -> dict:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad("messages: must be a non-empty list of messages")
        return {"model": body["model"]}


TOKEN_COUNT = TokenCountFront()
