"""Google Gemini (the Gemini API, key auth) behind the OpenAI interface: chat via
generateContent / streamGenerateContent (SSE), embeddings via batchEmbedContents.

A prompt Gemini blocks outright (`promptFeedback.blockReason`, no candidates) is an
OpenAI-style 400 `content_filter` error, streams included (the first event is read before
answering); an answer stopped by a safety filter is a normal reply with
finish_reason "content_filter". Only HTTP, auth and URLs live here; the wire format is
heliograph.formats.gemini.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import quote

import orjson

from heliograph.costs import Usage
from heliograph.errors import UpstreamError
from heliograph.formats.anthropic.request_to_openai import to_openai as anthropic_to_openai
from heliograph.formats.gemini import answer_to_openai as reply
from heliograph.formats.gemini import embeddings as embedding_format
from heliograph.formats.gemini.request_from_openai import to_gemini
from heliograph.formats.gemini.stream_to_openai import StreamTranslator
from heliograph.formats.openai.chat import error_body, include_usage, json_or_none
from heliograph.formats.openai.usage import from_usage
from heliograph.providers import sse
from heliograph.providers._answers import JSON_HEADERS, error_response, listed, model_list
from heliograph.providers.base import NATIVE_KEY, Call, Provider, StreamReply
from heliograph.providers.http import UpstreamResponse


class Gemini(Provider):
    def _url(self, model: str, action: str) -> str:
        model = model.removeprefix("models/")
        return f"{self.settings.base_url}/v1beta/models/{quote(model, safe='.-_')}:{action}"

    def _headers(self, call: Call) -> dict[str, str]:
        headers = dict(self.settings.headers)
        headers.update(call.forward_headers)
        headers["content-type"] = "application/json"
        headers["x-goog-api-key"] = self.key(call)
        return headers

    def _failure(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamResponse:
        headers = {**headers, **JSON_HEADERS}
        delay = reply.retry_after(body)
        if delay is not None:
            headers["retry-after"] = delay        # so retries wait as long as Gemini asks
        return UpstreamResponse(status, headers, reply.error_body(status, body, self.name))

    async def chat(self, call: Call) -> UpstreamResponse:
        self.refuse_server_tools(call)
        model = call.body["model"]
        resp = await self.http.request("POST", self._url(model, "generateContent"),
                                       self._headers(call), orjson.dumps(to_gemini(call.body)),
                                       self.name)
        if resp.status >= 400:
            return self._failure(resp.status, resp.headers, resp.body)
        parsed = json_or_none(resp.body)
        if not isinstance(parsed, dict):
            return UpstreamResponse(resp.status, resp.headers, resp.body)  # malformed
        blocked = reply.blocked_prompt(parsed)
        if blocked:
            return error_response(400, resp.headers, blocked, "invalid_request_error",
                                         "content_filter")
        return UpstreamResponse(resp.status, {**resp.headers, **JSON_HEADERS},
                                orjson.dumps(reply.completion(parsed, model,
                                                              _parallel(call.body))))

    @contextlib.asynccontextmanager
    async def chat_stream(self, call: Call):
        self.refuse_server_tools(call)
        model = call.body["model"]
        headers = self._headers(call)
        headers["accept"] = "text/event-stream"
        url = self._url(model, "streamGenerateContent") + "?alt=sse"
        async with self.http.stream(url, headers, orjson.dumps(to_gemini(call.body)),
                                    self.name) as (status, rheaders, chunks):
            if status != 200:
                body = b"".join([c async for c in chunks])
                failure = self._failure(status, rheaders, body)
                yield StreamReply(status, failure.headers, error_body=failure.body)
                return
            batches = sse.EventBatches(chunks)
            first_batch = await anext(batches, None)
            first = first_batch[0] if first_batch else None
            blocked = reply.blocked_prompt(_event(first, self.name)) if first else None
            if blocked:
                yield StreamReply(400, rheaders, error_body=error_body(
                    blocked, "invalid_request_error", "content_filter"))
                return
            translator = StreamTranslator(model, include_usage(call.body), self.name,
                                          _parallel(call.body))
            yield StreamReply(status, rheaders,
                              events=self._events(first_batch, batches, translator))

    async def _events(self, first: list[bytes] | None, batches: AsyncIterator[list[bytes]],
                      translator: StreamTranslator) -> AsyncIterator[list[bytes]]:
        def translate(data: bytes) -> list[bytes]:
            return [orjson.dumps(chunk) for chunk in translator.feed(_event(data, self.name))]

        async def all_batches() -> AsyncIterator[list[bytes]]:
            if first:
                yield first
            async for batch in batches:
                yield batch

        async for out in sse.translated(all_batches(), translate):
            yield out
        closing = translator.end()
        if closing is None:
            return      # no finish reason before the end: the pipeline reports it cut
        yield [orjson.dumps(chunk) for chunk in closing] + [b"[DONE]"]

    async def models(self, call: Call) -> UpstreamResponse:
        """The models that generate or embed (Gemini lists tuning-only ones too)."""
        resp = await self._get(call, f"{self.settings.base_url}/v1beta/models?pageSize=1000")
        entries = listed(resp, "models")
        if entries is None:
            return resp
        usable = {"generateContent", "embedContent"}
        return model_list(
            [(m["name"].removeprefix("models/"), 0) for m in entries
             if isinstance(m.get("name"), str)
             and usable & set(m.get("supportedGenerationMethods") or ())], "google")

    async def count_tokens(self, call: Call) -> UpstreamResponse:
        """Anthropic's count_tokens for a Gemini model, by Gemini's own countTokens: the
        Anthropic request is translated as a Messages request would be (so the count
        covers the system prompt and tools too). Billed as nothing, as at Anthropic."""
        model = call.body["model"]
        caller = dict(call.caller_body or {}, model=model)
        caller.setdefault("max_tokens", 1)    # a Messages request needs one; unused here
        request = to_gemini(anthropic_to_openai(caller))
        payload = {"generateContentRequest": {"model": "models/" + model, **request}}
        resp = await self.http.request("POST", self._url(model, "countTokens"),
                                       self._headers(call), orjson.dumps(payload), self.name)
        if resp.status >= 400:
            return self._failure(resp.status, resp.headers, resp.body)
        counted = json_or_none(resp.body)
        total = counted.get("totalTokens") if isinstance(counted, dict) else None
        if isinstance(total, bool) or not isinstance(total, int):
            raise UpstreamError(f"provider {self.name!r} sent a malformed token count",
                                code="upstream_malformed")
        answer = {"model": model, "usage": from_usage(Usage()),
                  NATIVE_KEY: {"input_tokens": total}}
        return UpstreamResponse(resp.status, {**resp.headers, **JSON_HEADERS},
                                orjson.dumps(answer))

    async def embeddings(self, call: Call) -> UpstreamResponse:
        body, model = call.body, call.body["model"]
        texts = embedding_format.texts_of(body)
        resp = await self.http.request("POST", self._url(model, "batchEmbedContents"),
                                       self._headers(call),
                                       orjson.dumps(embedding_format.to_gemini(body, texts)),
                                       self.name)
        if resp.status >= 400:
            return self._failure(resp.status, resp.headers, resp.body)
        parsed = json_or_none(resp.body)
        if not isinstance(parsed, dict):
            return UpstreamResponse(resp.status, resp.headers, resp.body)
        out = embedding_format.embeddings(parsed, texts, model, body.get("encoding_format") == "base64")
        if out is None:
            raise UpstreamError(f"provider {self.name!r} sent embeddings that are not "
                                "lists of numbers", code="upstream_malformed")
        return UpstreamResponse(resp.status, {**resp.headers, **JSON_HEADERS},
                                orjson.dumps(out))


def _parallel(body: dict) -> bool:
    return body.get("parallel_tool_calls") is not False


def _event(data: bytes, provider: str) -> dict:
    event = json_or_none(data)
    if not isinstance(event, dict):
        raise UpstreamError(f"provider {provider!r} sent a malformed stream event",
                            code="upstream_malformed")
    return event
