"""The provider interface: a few methods, each "unsupported" unless an adapter says so.

Every adapter speaks OpenAI's wire format to the pipeline: requests arrive as OpenAI
bodies and replies leave as OpenAI bodies / chunk payloads, whatever the provider speaks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from heliograph.config import ProviderSettings
from heliograph.errors import BadRequest, Unauthorized
from heliograph.providers.http import HttpClient, UpstreamResponse


@dataclass
class Call:
    """One upstream attempt."""

    body: dict                  # OpenAI-format request body, model already the upstream name
    raw: bytes | None           # the caller's bytes when `body` is unchanged (fast path)
    forward_headers: dict[str, str] = field(default_factory=dict)
    # BYOK: the caller's provider credential, e.g. "Bearer sk-..."; overrides the gateway's.
    provider_authorization: str | None = None


@dataclass
class StreamReply:
    status: int
    headers: dict[str, str]
    # OpenAI chunk payloads (bytes of JSON, then b"[DONE]") when status is 200;
    error_body: bytes = b""
    events: AsyncIterator[bytes] | None = None


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
            return call.provider_authorization
        if not self.api_key:
            raise Unauthorized(
                f"no API key configured for provider {self.name!r}: set its environment "
                f"variable or [providers.{self.name}] api_key, or bring your own key with "
                "Helicone-Auth", code="missing_provider_key")
        return "Bearer " + self.api_key

    async def chat(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} does not support chat completions")

    @contextlib.asynccontextmanager
    async def chat_stream(self, call: Call):
        raise Unsupported(f"provider {self.name!r} does not support streaming")
        yield  # pragma: no cover  (makes this an async generator)

    async def embeddings(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} does not support embeddings")

    async def models(self, call: Call) -> UpstreamResponse:
        raise Unsupported(f"provider {self.name!r} does not list models")
