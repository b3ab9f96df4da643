"""Anthropic (Messages API) behind the OpenAI interface.

Only HTTP, auth and URLs live here; the wire format is heliograph.formats.anthropic.
OpenAI callers: the request is translated (`request_from_openai`), the answer
translated back (`answer_to_openai`, `stream_to_openai`). Anthropic callers
(`/v1/messages`, `call.caller_format == "anthropic"`): their body goes upstream as it
is — the only lossless way to carry what OpenAI's format has no place for
(`cache_control`, thinking blocks and their signatures, `top_k`, server tools,
citations). The answer is still translated, because the pipeline logs, prices and caches
OpenAI objects, but the provider's own message (or each stream event) rides along
under `NATIVE_KEY` for the Anthropic front to send back untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import orjson

from heliograph.costs import Usage
from heliograph.errors import UpstreamError
from heliograph.formats.anthropic import answer_to_openai as reply
from heliograph.formats.anthropic.request_from_openai import to_anthropic
from heliograph.formats.anthropic.stream_to_openai import StreamTranslator
from heliograph.formats.openai.chat import include_usage, json_or_none
from heliograph.formats.openai.usage import from_usage
from heliograph.providers import sse
from heliograph.providers._answers import JSON_HEADERS, listed, model_list
from heliograph.providers.base import NATIVE_KEY, Call, Provider, StreamReply
from heliograph.providers.http import UpstreamResponse

API_VERSION = "2023-06-01"


class Anthropic(Provider):
    def _url(self, endpoint: str = "/v1/messages") -> str:
        return self.settings.base_url + endpoint

    def _headers(self, call: Call) -> dict[str, str]:
        headers = dict(self.settings.headers)
        headers.update(call.forward_headers)      # anthropic-version / -beta from callers
        headers["content-type"] = "application/json"
        headers.setdefault("anthropic-version", API_VERSION)
        key = self.key(call)
        if key.startswith("sk-ant-oat"):          # OAuth tokens go as bearer tokens
            headers["authorization"] = "Bearer " + key
        else:
            headers["x-api-key"] = key
        return headers

    def _request(self, call: Call) -> tuple[bytes, str | None, bool]:
        """(payload, JSON-mode tool name, whether the caller's own body is sent)."""
        if call.caller_format == "anthropic" and call.caller_body is not None:
            return orjson.dumps(dict(call.caller_body, model=call.body["model"])), None, True
        body, json_tool = to_anthropic(call.body)
        return orjson.dumps(body), json_tool, False

    async def chat(self, call: Call) -> UpstreamResponse:
        payload, json_tool, native = self._request(call)
        resp = await self.http.request("POST", self._url(), self._headers(call), payload,
                                       self.name)
        headers = reply.openai_ratelimit_headers(resp.headers)
        if resp.status >= 400:
            return UpstreamResponse(resp.status, {**headers, **JSON_HEADERS},
                                    reply.error_body(resp.status, resp.body, self.name))
        message = json_or_none(resp.body)
        if not isinstance(message, dict):
            # Not JSON, or no object: the pipeline reports it as malformed, with the body.
            return UpstreamResponse(resp.status, headers, resp.body)
        if message.get("type") != "message":
            # An object of another kind (an error object from a proxy in between, say):
            # handed on, the pipeline would take it for an OpenAI completion.
            raise UpstreamError(f"provider {self.name!r} sent a malformed response (not "
                                "an Anthropic message)", code="upstream_malformed")
        completion = reply.completion(message, json_tool)
        if native:
            completion[NATIVE_KEY] = message
        return UpstreamResponse(resp.status, {**headers, **JSON_HEADERS},
                                orjson.dumps(completion))

    async def models(self, call: Call) -> UpstreamResponse:
        resp = await self._get(call, self._url("/v1/models?limit=1000"))
        entries = listed(resp, "data")
        if entries is None:
            return resp
        return model_list(reply.listed_models(entries), "anthropic")

    async def count_tokens(self, call: Call) -> UpstreamResponse:
        """Anthropic's free token count of a Messages request (the caller's own body).
        The answer rides under NATIVE_KEY; for the log it counts as a call of no tokens
        (it bills none: the tokens counted are not used)."""
        payload = orjson.dumps(dict(call.caller_body or {}, model=call.body["model"]))
        resp = await self.http.request("POST", self._url("/v1/messages/count_tokens"),
                                       self._headers(call), payload, self.name)
        headers = reply.openai_ratelimit_headers(resp.headers)
        if resp.status >= 400:
            return UpstreamResponse(resp.status, {**headers, **JSON_HEADERS},
                                    reply.error_body(resp.status, resp.body, self.name))
        counted = json_or_none(resp.body)
        if not isinstance(counted, dict) or not isinstance(counted.get("input_tokens"), int):
            raise UpstreamError(f"provider {self.name!r} sent a malformed token count",
                                code="upstream_malformed")
        answer = {"model": call.body["model"], "usage": from_usage(Usage()),
                  NATIVE_KEY: counted}
        return UpstreamResponse(resp.status, {**headers, **JSON_HEADERS},
                                orjson.dumps(answer))

    @contextlib.asynccontextmanager
    async def chat_stream(self, call: Call):
        payload, json_tool, native = self._request(call)
        headers = self._headers(call)
        headers["accept"] = "text/event-stream"
        async with self.http.stream(self._url(), headers, payload, self.name) as (
                status, rheaders, chunks):
            rheaders = reply.openai_ratelimit_headers(rheaders)
            if status != 200:
                body = b"".join([c async for c in chunks])
                yield StreamReply(status, rheaders,
                                  error_body=reply.error_body(status, body, self.name))
                return
            translator = StreamTranslator(json_tool, include_usage(call.body), self.name)
            yield StreamReply(status, rheaders, events=self._events(chunks, translator, native))

    def _events(self, chunks: AsyncIterator[bytes], translator: StreamTranslator,
                native: bool) -> AsyncIterator[list[bytes]]:
        # Without message_stop no [DONE] comes, so the pipeline reports the stream cut.
        return sse.translated(sse.EventBatches(chunks),
                              lambda data: self._translated(data, translator, native))

    def _translated(self, data: bytes, translator: StreamTranslator,
                    native: bool) -> list[bytes]:
        event = json_or_none(data)
        if not isinstance(event, dict):
            raise UpstreamError(f"provider {self.name!r} sent a malformed stream event",
                                code="upstream_malformed")
        out = translator.feed(event)
        if native:
            # Every upstream event reaches the Anthropic front, in order, on the first
            # chunk it became (or on an empty chunk when it became none).
            out = out or [translator.bare()]
            out[0][NATIVE_KEY] = event
        payloads = [orjson.dumps(chunk) for chunk in out]
        if translator.done:
            payloads.append(b"[DONE]")
        return payloads
