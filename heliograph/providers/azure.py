"""Azure OpenAI: OpenAI's wire format at deployment URLs, configured, not translated.

    [providers.azure]
    base_url = "https://<resource>.openai.azure.com"
    api_version = "2024-10-21"        # default; "v1" selects Azure's /openai/v1 API
    models = ["my-gpt-4o-mini"]       # deployment names, so `model` routes here

The model a caller names is the deployment: `azure/my-gpt-4o-mini` calls
`/openai/deployments/my-gpt-4o-mini/chat/completions?api-version=…`. Azure answers with
the deployment's real model name, which is what gets priced. The key goes in `api-key`
(an Entra ID token, recognisable as a JWT, as a bearer token instead). The Responses API
is always on Azure's v1 path, where it lives without a dated api-version.
"""

from __future__ import annotations

from urllib.parse import quote

from heliograph.errors import BadRequest
from heliograph.providers.base import Call, Unsupported
from heliograph.providers.http import UpstreamResponse
from heliograph.providers.openai import OpenAICompatible

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAI(OpenAICompatible):
    def _base(self) -> str:
        if not self.settings.base_url:
            raise BadRequest(f"provider {self.name!r} needs its endpoint: set base_url = "
                             f"\"https://<resource>.openai.azure.com\" in "
                             f"[providers.{self.name}]", code="provider_not_configured")
        return self.settings.base_url.removesuffix("/openai").rstrip("/")

    def _url(self, call: Call, operation: str) -> str:
        version = self.settings.api_version or DEFAULT_API_VERSION
        if version == "v1":
            return f"{self._base()}/openai/v1/{operation}"
        deployment = quote(str(call.body.get("model", "")), safe="")
        return (f"{self._base()}/openai/deployments/{deployment}/{operation}"
                f"?api-version={quote(version)}")

    def _headers(self, call: Call) -> dict[str, str]:
        headers = dict(self.settings.headers)
        headers.update(call.forward_headers)
        headers["content-type"] = "application/json"
        key = self.key(call)
        if key.startswith("eyJ"):                 # a JWT: Entra ID, not an API key
            headers["authorization"] = "Bearer " + key
        else:
            headers["api-key"] = key
        return headers

    def _responses_url(self) -> str:
        return f"{self._base()}/openai/v1/responses"

    def _passthrough_url(self, path: str) -> str:
        # Azure's v1 API serves the rest of OpenAI's paths as OpenAI does.
        return f"{self._base()}/openai/v1{path}"

    def _chat_url(self, call: Call) -> str:
        return self._url(call, "chat/completions")

    def _embeddings_url(self, call: Call) -> str:
        return self._url(call, "embeddings")

    async def models(self, call: Call) -> UpstreamResponse:
        # Azure lists base models, not the deployments a caller can name.
        raise Unsupported(f"provider {self.name!r} does not list its deployments")
