"""OpenAI and every OpenAI-compatible provider (Groq, Mistral, Together, Ollama, vLLM…):
a pass-through. The caller's bytes go upstream untouched whenever the body is unchanged."""

from __future__ import annotations

import contextlib

import orjson

from heliograph.providers import sse
from heliograph.providers.base import Call, Provider, StreamReply
from heliograph.providers.catalog import BUILTIN_PROVIDERS, KEYLESS_PROVIDERS
from heliograph.providers.http import UpstreamResponse


class OpenAICompatible(Provider):
    def _headers(self, call: Call) -> dict[str, str]:
        headers = dict(self.settings.headers)
        headers.update(call.forward_headers)
        headers["content-type"] = "application/json"
        # Built-in cloud providers need a key; local servers (Ollama, vLLM, a user's own
        # entry without api_key) are called without one.
        if (call.provider_authorization or self.api_key
                or (self.name in BUILTIN_PROVIDERS and self.name not in KEYLESS_PROVIDERS)):
            headers["authorization"] = self.credential(call)
        return headers

    def _payload(self, call: Call) -> bytes:
        return call.raw if call.raw is not None else orjson.dumps(call.body)

    async def chat(self, call: Call) -> UpstreamResponse:
        return await self.http.request("POST", self.settings.base_url + "/chat/completions",
                                       self._headers(call), self._payload(call), self.name)

    @contextlib.asynccontextmanager
    async def chat_stream(self, call: Call):
        headers = self._headers(call)
        headers["accept"] = "text/event-stream"
        async with self.http.stream(self.settings.base_url + "/chat/completions", headers,
                                    self._payload(call), self.name) as (status, rheaders, chunks):
            if status != 200:
                body = b"".join([c async for c in chunks])
                yield StreamReply(status, rheaders, error_body=body)
            else:
                yield StreamReply(status, rheaders, events=sse.data_payloads(chunks))

    async def embeddings(self, call: Call) -> UpstreamResponse:
        return await self.http.request("POST", self.settings.base_url + "/embeddings",
                                       self._headers(call), self._payload(call), self.name)

    async def models(self, call: Call) -> UpstreamResponse:
        headers = self._headers(call)
        headers.pop("content-type", None)
        return await self.http.request("GET", self.settings.base_url + "/models", headers,
                                       None, self.name)
