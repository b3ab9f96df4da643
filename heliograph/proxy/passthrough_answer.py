"""The provider's answer to a relayed OpenAI request (proxy/passthrough.py), sent back as
it came and logged: an error is relayed in OpenAI's shape (made whole when the provider
left out `type` or `code`); JSON is read whole, logged and priced; an event stream (a
`stream: true` completion) is relayed event by event (proxy/sse_log.py); anything else
(audio, a file's content) is relayed as it arrives and logged as its type and size.

A failure after the answer has started (the provider stalls or drops the connection)
is logged with its status; an event stream then ends with an in-band error event, as
OpenAI's do, and a byte stream is cut (the connection closed without the final chunk),
so the caller cannot mistake a truncated file for a whole one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from heliograph import media_costs
from heliograph.errors import GatewayError, ProviderStatusError
from heliograph.providers.base import Provider
from heliograph.providers.sse import frame
from heliograph.proxy.flow import Flow
from heliograph.proxy.routing import json_or_text, relayable, upstream_message
from heliograph.proxy.sse_log import CompletionStreamLog

# JSON answers are logged whole up to this size; larger ones as their type and size.
MAX_LOGGED_ANSWER = 1024 * 1024


class Relayed:
    """One upstream answer on its way back: where it came from and what was asked."""

    def __init__(self, flow: Flow, kind: str, provider: Provider, model: str | None,
                 body: dict, strip_usage: bool) -> None:
        self.flow, self.kind, self.provider = flow, kind, provider
        self.model, self.body, self.strip_usage = model, body, strip_usage

    async def send(self, status: int, headers: dict[str, str],
                   chunks: AsyncIterator[bytes]) -> None:
        exchange = self.flow.exchange
        name = self.provider.name
        if status >= 400:
            raw = b"".join([c async for c in chunks])
            message = upstream_message(raw, status, name)
            exchange.end_attempt(name, self.model or "", status, message, headers)
            exchange.set_response(json_or_text(raw))
            raise ProviderStatusError(status, message, raw, relayable(headers))
        exchange.end_attempt(name, self.model or "", status, None, headers)
        content_type = headers.get("content-type", "application/octet-stream")
        out = self.flow.response_headers(headers)
        out.append((b"content-type", content_type.encode("latin-1")))
        if "content-disposition" in headers:   # a file's name, on its content
            out.append((b"content-disposition",
                        headers["content-disposition"].encode("latin-1")))
        if "event-stream" in content_type:
            await self._events(status, out, chunks)
        elif "json" in content_type:
            await self._json(status, out, content_type, chunks)
        else:
            await self._bytes(status, out, content_type, chunks)

    def _price(self, answer: Any, model: str | None = None) -> None:
        rec = self.flow.exchange.record
        model = model or self.model
        if model:
            rec["model_used"] = model
        rec.update(media_costs.price(self.kind, self.provider.name, model or "", self.body,
                                     answer, self.flow.exchange.wall))

    def _cut(self, error: GatewayError, ttft: float | None = None) -> None:
        exchange = self.flow.exchange
        exchange.record["attempts"][-1].update(status=error.status, error=error.message)
        exchange.fail(error)
        exchange.log(error.status, ttft)

    async def _json(self, status: int, out: list[tuple[bytes, bytes]], content_type: str,
                    chunks: AsyncIterator[bytes]) -> None:
        exchange = self.flow.exchange
        raw = b"".join([c async for c in chunks])   # a failure here is a plain error
        parsed = json_or_text(raw) if len(raw) <= MAX_LOGGED_ANSWER else None
        self._price(parsed)
        exchange.set_response(parsed if parsed is not None else
                              {"content_type": content_type, "bytes": len(raw)})
        exchange.log(status)
        send = self.flow.send
        await send({"type": "http.response.start", "status": status,
                    "headers": out + [(b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})

    async def _bytes(self, status: int, out: list[tuple[bytes, bytes]], content_type: str,
                     chunks: AsyncIterator[bytes]) -> None:
        exchange, send = self.flow.exchange, self.flow.send
        await send({"type": "http.response.start", "status": status, "headers": out})
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except GatewayError as error:
            exchange.set_response({"content_type": content_type, "bytes": size})
            self._cut(error)
            return      # no final chunk: the server closes the connection mid-body
        self._price(None)
        exchange.set_response({"content_type": content_type, "bytes": size})
        exchange.log(status)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _events(self, status: int, out: list[tuple[bytes, bytes]],
                      chunks: AsyncIterator[bytes]) -> None:
        exchange, send = self.flow.exchange, self.flow.send
        log = CompletionStreamLog(self.strip_usage)
        await send({"type": "http.response.start", "status": status,
                    "headers": out + [(b"cache-control", b"no-cache")]})
        ttft = None
        failure: GatewayError | None = None
        try:
            async for chunk in chunks:
                relayed = log.feed(chunk)
                if ttft is None and log.saw_text:
                    ttft = exchange.elapsed_ms()
                if relayed:
                    await send({"type": "http.response.body", "body": relayed,
                                "more_body": True})
        except GatewayError as error:
            failure = error
        answer = log.completion()
        self._price(answer, answer.get("model"))
        exchange.set_response(answer)
        if failure is None and not log.done:
            failure = GatewayError(f"provider {self.provider.name!r} ended the stream "
                                   "without [DONE]", status=502, code="upstream_truncated")
        if failure is not None:
            self._cut(failure, ttft)
            await send({"type": "http.response.body", "more_body": False,
                        "body": log.rest() + frame(failure.body_bytes())})
            return
        exchange.log(status, ttft)
        await send({"type": "http.response.body", "body": log.rest(), "more_body": False})
