"""OpenAI and every OpenAI-compatible provider (Groq, Mistral, Together, Ollama, vLLM…):
a pass-through. The caller's bytes go upstream untouched whenever the body is unchanged.
The Responses API goes through untouched only to providers that serve it (the catalog's
`responses_api`, and Azure); the others get it translated to and from chat
(providers/responses_via_chat.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable
from contextlib import AbstractAsyncContextManager

import orjson

from heliograph.providers import sse
from heliograph.providers.base import Call, Provider, StreamReply
from heliograph.providers.catalog import BUILTIN_PROVIDERS
from heliograph.providers.http import UpstreamResponse


class OpenAICompatible(Provider):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        builtin = BUILTIN_PROVIDERS.get(self.name)
        # `responses_api` in the config wins; else Azure serves the Responses API under
        # any name and, of the rest, the catalog's.
        configured = self.settings.responses_api
        self.stores_responses = configured if configured is not None else (
            self.settings.type == "azure" or (builtin is not None and builtin.responses_api))

    def _headers(self, call: Call) -> dict[str, str]:
        headers = dict(self.settings.headers)
        headers.update(call.forward_headers)
        headers["content-type"] = "application/json"
        # Built-in cloud providers need a key; local servers (Ollama, vLLM, a user's own
        # entry without api_key) are called without one.
        builtin = BUILTIN_PROVIDERS.get(self.name)
        if (call.provider_authorization or self.api_key
                or (builtin is not None and not builtin.keyless)):
            headers["authorization"] = self.credential(call)
        return headers

    def _payload(self, call: Call) -> bytes:
        return call.raw if call.raw is not None else orjson.dumps(call.body)

    # URLs are methods so Azure (providers/azure.py) can put them under its deployments.
    def _chat_url(self, call: Call) -> str:
        return self.settings.base_url + "/chat/completions"

    def _embeddings_url(self, call: Call) -> str:
        return self.settings.base_url + "/embeddings"

    def _responses_url(self) -> str:
        return self.settings.base_url + "/responses"

    async def chat(self, call: Call) -> UpstreamResponse:
        self.refuse_server_tools(call)
        return await self.http.request("POST", self._chat_url(call), self._headers(call),
                                       self._payload(call), self.name)

    def chat_stream(self, call: Call) -> _ChatStream:  # type: ignore[override]
        return _ChatStream(self, call)

    def _stream(self, url: str, call: Call):
        headers = self._headers(call)
        headers["accept"] = "text/event-stream"
        return self.http.stream(url, headers, self._payload(call), self.name)

    async def responses(self, call: Call) -> UpstreamResponse:
        if not self.stores_responses:
            return await super().responses(call)
        return await self.http.request("POST", self._responses_url(), self._headers(call),
                                       self._payload(call), self.name)

    async def responses_compact(self, call: Call) -> UpstreamResponse:
        if not self.stores_responses:
            return await super().responses_compact(call)
        return await self.http.request("POST", self._responses_url() + "/compact",
                                       self._headers(call), self._payload(call), self.name)

    def responses_stream(self, call: Call):
        if not self.stores_responses:
            return super().responses_stream(call)
        return self._native_responses_stream(call)

    @contextlib.asynccontextmanager
    async def _native_responses_stream(self, call: Call):
        async with self._stream(self._responses_url(), call) as (status, rheaders, chunks):
            if status != 200:
                body = b"".join([c async for c in chunks])
                yield StreamReply(status, rheaders, error_body=body)
            else:
                # Imported on the first native Responses stream only (issue 15).
                from heliograph.formats.responses.events import responses_batches
                yield StreamReply(status, rheaders,
                                  events=responses_batches(sse.EventBatches(chunks)))

    async def embeddings(self, call: Call) -> UpstreamResponse:
        return await self.http.request("POST", self._embeddings_url(call), self._headers(call),
                                       self._payload(call), self.name)

    async def models(self, call: Call) -> UpstreamResponse:
        return await self._get(call, self.settings.base_url + "/models")

    async def moderate(self, call: Call) -> UpstreamResponse:
        return await self.http.request("POST", self.settings.base_url + "/moderations",
                                       self._headers(call), self._payload(call), self.name)

    def open_passthrough(self, call: Call, method: str, path: str,
                         data: bytes | AsyncIterable[bytes] | None, content_type: str | None):
        headers = self._headers(call)
        if content_type:
            headers["content-type"] = content_type
        else:
            headers.pop("content-type", None)
        return self.http.stream(self._passthrough_url(path), headers, data, self.name,
                                method)

    def _passthrough_url(self, path: str) -> str:
        return self.settings.base_url + path


class _ChatStream:
    """OpenAICompatible.chat_stream, the StreamReply as an async context manager: a
    class rather than a generator-based one (entered on every stream; see
    http._Stream)."""

    __slots__ = ("_provider", "_call", "_upstream")

    def __init__(self, provider: OpenAICompatible, call: Call) -> None:
        self._provider = provider
        self._call = call
        self._upstream: AbstractAsyncContextManager | None = None

    async def __aenter__(self) -> StreamReply:
        provider, call = self._provider, self._call
        provider.refuse_server_tools(call)
        upstream = provider._stream(provider._chat_url(call), call)
        status, rheaders, chunks = await upstream.__aenter__()
        self._upstream = upstream
        if status == 200:
            return StreamReply(status, rheaders, events=sse.EventBatches(chunks))
        try:
            body = b"".join([c async for c in chunks])
        except BaseException:
            self._upstream = None
            await upstream.__aexit__(None, None, None)
            raise
        return StreamReply(status, rheaders, error_body=body)

    async def __aexit__(self, *exc_info: object) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.__aexit__(None, None, None)
