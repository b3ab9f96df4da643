"""The provider interface: a few methods, each "unsupported" unless an adapter says so.

Every adapter speaks OpenAI's wire format to the pipeline: requests arrive as OpenAI
bodies and replies leave as OpenAI bodies / chunk payloads, whatever the provider speaks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from heliograph.config import ProviderSettings
from heliograph.errors import BadRequest, Unauthorized
from heliograph.providers.http import HttpClient, UpstreamResponse

# Where an adapter that sent `Call.caller_body` natively puts the provider's own answer
# (in the OpenAI completion, or in each chunk for a stream event) for the caller's front.
NATIVE_KEY = "_native"


@dataclass
class Call:
    """One upstream attempt."""

    body: dict                  # OpenAI-format request body, model already the upstream name
    raw: bytes | None           # the caller's bytes when `body` is unchanged (fast path)
    forward_headers: dict[str, str] = field(default_factory=dict)
    # BYOK: the caller's provider credential, e.g. "Bearer sk-..."; overrides the gateway's.
    provider_authorization: str | None = None
    # The caller's own wire format and body (before translation to OpenAI). An adapter
    # whose provider speaks that format natively may send `caller_body` as it is, so
    # nothing the translation cannot carry is lost (Anthropic callers to Anthropic).
    caller_format: str = "openai"
    caller_body: dict | None = None


@dataclass
class StreamReply:
    status: int
    headers: dict[str, str]
    error_body: bytes = b""
    # When status is 200: OpenAI chunk payloads (bytes of JSON, then b"[DONE]"), in
    # batches, one per upstream read, so the pipeline relays each read with one send.
    events: AsyncIterator[list[bytes]] | None = None


class Unsupported(BadRequest):
    code = "unsupported_by_provider"


class Provider:
    def __init__(self, settings: ProviderSettings, api_key: str, http: HttpClient):
        self.name = settings.name
        self.settings = settings
        self.api_key = api_key
        self.http = http

    def credential(self, call: Call) -> str:
        """The value for the provider's auth header; BYOK wins over the gateway's key."""
        if call.provider_authorization:
            value = call.provider_authorization.strip()
            # A bare key (e.g. from x-api-key on /v1/messages) still needs its scheme.
            return value if " " in value else "Bearer " + value
        if not self.api_key:
            raise Unauthorized(
                f"no API key configured for provider {self.name!r}: set its environment "
                f"variable or [providers.{self.name}] api_key, or bring your own key with "
                "Helicone-Auth", code="missing_provider_key")
        return "Bearer " + self.api_key

    def refuse_server_tools(self, call: Call) -> None:
        """An Anthropic caller's server tools (web search, code execution…) run only at
        Anthropic: a translating adapter refuses them rather than drop them silently."""
        if call.caller_format != "anthropic" or not call.caller_body:
            return
        # Imported here: only Anthropic callers need the Anthropic front's modules, and a
        # worker serving OpenAI-shaped traffic never loads them (issue 15).
        from heliograph.formats.anthropic.request_to_openai import server_tools
        found = server_tools(call.caller_body)
        if found:
            raise Unsupported(f"Anthropic's server tools run only at Anthropic; provider "
                              f"{self.name!r} cannot run {', '.join(found)}")

    def key(self, call: Call) -> str:
        """The bare key, for providers that take it in their own header (x-api-key,
        x-goog-api-key, api-key)."""
        scheme, _, value = self.credential(call).partition(" ")
        return value.strip() if scheme.lower() == "bearer" else f"{scheme} {value}".strip()

    async def chat(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} does not support chat completions")

    @contextlib.asynccontextmanager
    async def chat_stream(self, call: Call) -> AsyncIterator[StreamReply]:
        raise Unsupported(f"provider {self.name!r} does not support streaming")
        yield  # pragma: no cover  (makes this an async generator)

    # The Responses API: translated to and from chat unless the adapter speaks it natively
    # (then it also keeps stored responses itself, and the gateway need not).
    # The translation is imported at the first Responses call, not with this module: a
    # worker that serves only chat never loads it (~0.5 MB with its formats; issue 15).
    stores_responses = False

    async def responses(self, call: Call) -> UpstreamResponse:
        from heliograph.providers import responses_via_chat
        return await responses_via_chat.respond(self, call)

    def responses_stream(self, call: Call) -> AbstractAsyncContextManager[StreamReply]:
        from heliograph.providers import responses_via_chat
        return responses_via_chat.respond_stream(self, call)

    async def responses_compact(self, call: Call) -> UpstreamResponse:
        from heliograph.providers import responses_via_chat
        return await responses_via_chat.compact(self, call)

    async def embeddings(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} does not support embeddings")

    async def models(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} does not list models")

    async def moderate(self, call: Call) -> UpstreamResponse:
        """OpenAI's /moderations with call.body (Helicone-Moderations-Enabled)."""
        raise Unsupported(f"provider {self.name!r} has no moderation endpoint")

    def _headers(self, call: Call) -> dict[str, str]:
        """The adapter's request headers (auth included); every adapter defines it."""
        raise NotImplementedError

    async def _get(self, call: Call, url: str) -> UpstreamResponse:
        """A GET with the adapter's own auth headers (`_headers`), without a content type
        (there is no body)."""
        headers = self._headers(call)
        headers.pop("content-type", None)
        return await self.http.request("GET", url, headers, None, self.name)

    def open_passthrough(self, call: Call, method: str, path: str,
                         data: bytes | AsyncIterable[bytes] | None, content_type: str | None
                         ) -> AbstractAsyncContextManager[tuple[int, dict[str, str],
                                                                AsyncIterator[bytes]]]:
        """The rest of OpenAI's API (completions, images, audio, files, batches…) sent
        as it came, to `path` under the provider's base URL: (status, headers, chunks)
        with the answer's bytes as they arrive. Only OpenAI-compatible providers can."""
        raise Unsupported(f"{path.partition('?')[0]} is passed through only to "
                          f"OpenAI-compatible providers; provider {self.name!r} is not one")

    async def count_tokens(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} cannot count tokens (it has no counting "
                          "endpoint): /v1/messages/count_tokens needs an Anthropic or "
                          "Gemini model")


@dataclass(frozen=True)
class Operation:
    """What the pipeline asks of a provider, naming the Provider methods that do it.
    An explicit table (below) rather than method names built from strings: a typo or a
    missing stream variant is an error at import, not a 500 on some request."""

    name: str
    send: Callable[[Provider, Call], Awaitable[UpstreamResponse]]
    # None: the operation has no streamed variant, whatever the body's `stream` says.
    open_stream: Callable[[Provider, Call], AbstractAsyncContextManager[StreamReply]] | None


CHAT = Operation("chat", lambda p, call: p.chat(call), lambda p, call: p.chat_stream(call))
EMBEDDINGS = Operation("embeddings", lambda p, call: p.embeddings(call), None)
RESPONSES = Operation("responses", lambda p, call: p.responses(call),
                      lambda p, call: p.responses_stream(call))
RESPONSES_COMPACT = Operation("responses_compact", lambda p, call: p.responses_compact(call),
                              None)
COUNT_TOKENS = Operation("count_tokens", lambda p, call: p.count_tokens(call), None)
