"""The Responses API on a provider that only speaks chat: the request is translated to
a chat request (heliograph.formats.responses), sent with the adapter's own `chat` /
`chat_stream`, and the answer translated back — a response object, or the typed event
stream ending with `response.completed` and the b"[DONE]" the pipeline waits for.

Errors come back as the chat adapter made them (OpenAI-shaped bodies), so retries,
fallbacks and the log treat them as for chat.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson

from heliograph.errors import UpstreamError
from heliograph.formats.openai.chat import json_or_none
from heliograph.formats.responses import compaction
from heliograph.formats.responses.answer_from_chat import from_chat
from heliograph.formats.responses.request_to_chat import to_chat
from heliograph.formats.responses.stream_from_chat import ChatToResponsesStream
from heliograph.providers import sse
from heliograph.providers.http import UpstreamResponse

if TYPE_CHECKING:
    from heliograph.providers.base import Call, Provider, StreamReply


def _echoed(call: Call) -> dict:
    """The request the answer echoes: as the caller wrote it where the gateway put a
    stored conversation in place of its previous_response_id (proxy/responses.py)."""
    previous = (call.caller_body or {}).get("previous_response_id")
    return dict(call.body, previous_response_id=previous) if previous else call.body


def _chat_call(call: Call, body: dict) -> Call:
    from heliograph.providers.base import Call
    return Call(body, None, call.forward_headers, call.provider_authorization)


async def _chat_answer(provider: Provider, call: Call, chat_body: dict, translate
                       ) -> UpstreamResponse:
    reply = await provider.chat(_chat_call(call, chat_body))
    completion = json_or_none(reply.body) if reply.status < 400 else None
    if not isinstance(completion, dict):
        return reply  # an error as the adapter made it; or malformed, which the pipeline says
    return UpstreamResponse(reply.status, reply.headers,
                            orjson.dumps(translate(completion, _echoed(call))))


async def respond(provider: Provider, call: Call) -> UpstreamResponse:
    return await _chat_answer(provider, call, to_chat(call.body, provider.name), from_chat)


async def compact(provider: Provider, call: Call) -> UpstreamResponse:
    return await _chat_answer(provider, call,
                              compaction.to_chat_request(call.body, provider.name),
                              compaction.from_chat)


@contextlib.asynccontextmanager
async def respond_stream(provider: Provider, call: Call) -> AsyncIterator[StreamReply]:
    from heliograph.providers.base import StreamReply
    chat_body = to_chat(dict(call.body, stream=True), provider.name)
    async with provider.chat_stream(_chat_call(call, chat_body)) as reply:
        if reply.events is None or reply.status >= 400:
            yield reply
            return
        translator = ChatToResponsesStream(_echoed(call))
        yield StreamReply(reply.status, reply.headers,
                          events=_events(reply.events, translator, provider.name))


def _events(batches: AsyncIterator[list[bytes]], translator: ChatToResponsesStream,
            provider: str) -> AsyncIterator[list[bytes]]:
    def translate(payload: bytes) -> list[bytes]:
        if payload == b"[DONE]":
            return [orjson.dumps(event) for event in translator.finish()] + [b"[DONE]"]
        chunk = json_or_none(payload)
        if not isinstance(chunk, dict):
            raise UpstreamError(f"provider {provider!r} sent a malformed stream event",
                                code="upstream_malformed")
        return [orjson.dumps(event) for event in translator.feed(chunk)]

    # No [DONE]: the chat stream was cut, and so is this one (the pipeline reports it).
    return sse.translated(batches, translate)
