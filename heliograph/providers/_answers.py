"""Answers the translating adapters build themselves, as HTTP responses: OpenAI error
responses and model listings."""

from __future__ import annotations

import orjson

from heliograph.formats.openai.chat import error_body, json_or_none
from heliograph.providers.http import UpstreamResponse

JSON_HEADERS = {"content-type": "application/json"}


def error_response(status: int, headers: dict[str, str], message: str, type_: str,
                   code: str | None = None) -> UpstreamResponse:
    return UpstreamResponse(status, {**headers, **JSON_HEADERS},
                            error_body(message, type_, code))


def listed(resp: UpstreamResponse, key: str) -> list[dict] | None:
    """The entries under `key` of a provider's successful listing; None when the answer
    is an error or not a listing (then it is passed on as it came)."""
    doc = json_or_none(resp.body) if resp.status == 200 else None
    entries = doc.get(key) if isinstance(doc, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else None


def model_list(models: list[tuple[str, int]], owned_by: str) -> UpstreamResponse:
    """GET /v1/models' answer from (model id, created epoch seconds) pairs."""
    data = [{"id": model, "object": "model", "created": created, "owned_by": owned_by}
            for model, created in models]
    return UpstreamResponse(200, dict(JSON_HEADERS),
                            orjson.dumps({"object": "list", "data": data}))
