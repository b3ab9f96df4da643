"""Helicone-Moderations-Enabled: the caller's input checked with OpenAI's moderation
endpoint before any model is called; flagged input is refused as Helicone refuses it
(400, code PROMPT_FLAGGED_FOR_MODERATION), and logged.

Which endpoint: the first model's provider when it speaks OpenAI's API (an OpenAI-
compatible provider, with the key the call would use), else the `openai` provider with
the gateway's key — a caller's own key for another provider never goes to OpenAI. What is
checked: the latest message's text when it is the user's (chat), or the `input` text
(embeddings, Responses). A moderation call that fails refuses the request (fail closed: the caller
asked for the check), saying why.
"""

from __future__ import annotations

from typing import Any

import orjson

from heliograph.errors import BadRequest, UpstreamError
from heliograph.providers.base import Call, Provider
from heliograph.providers.registry import Registry, Target

FLAGGED_CODE = "PROMPT_FLAGGED_FOR_MODERATION"
FLAGGED_MESSAGE = "The given prompt was flagged by the OpenAI Moderation endpoint."
MODERATION_MODEL = "omni-moderation-latest"


def refuse_llm_security() -> BadRequest:
    # Serving the request would claim a protection that is not there.
    return BadRequest("Helicone-LLM-Security-Enabled is not supported by this gateway "
                      "(prompt-injection screening is not implemented); remove the header, "
                      "or use Helicone-Moderations-Enabled for OpenAI's moderation check",
                      code="unsupported_header")


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str) and part:
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                out.append(part["text"])
            elif isinstance(part, dict) and part.get("type") == "message":
                out += _texts(part.get("content"))  # Responses API input items
        return out
    return []


def inputs_of(body: dict) -> list[str]:
    """The texts to check: the latest message when the user wrote it (chat; as Helicone
    checks — earlier turns were checked when they were new), else `input`."""
    messages = body.get("messages")
    if isinstance(messages, list):
        latest = messages[-1] if messages else None
        if isinstance(latest, dict) and latest.get("role") == "user":
            return _texts(latest.get("content"))
        return []
    return _texts(body.get("input"))


def _moderator(registry: Registry, first: Target, own_key: str | None
               ) -> tuple[Provider, str | None]:
    provider = first.provider
    if provider.settings.type == "openai":
        return provider, own_key
    return registry.provider("openai"), None


async def check(registry: Registry, first: Target, body: dict, own_key: str | None) -> None:
    """Raise BadRequest (400, FLAGGED_CODE) when the input is flagged."""
    texts = inputs_of(body)
    if not texts:
        return
    provider, key = _moderator(registry, first, own_key)
    call = Call({"model": MODERATION_MODEL, "input": texts}, None, {}, key)
    reply = await provider.moderate(call)
    try:
        results = orjson.loads(reply.body)["results"] if reply.status < 400 else None
    except (orjson.JSONDecodeError, KeyError, TypeError):
        results = None
    if not isinstance(results, list):
        raise UpstreamError(f"the moderation check (Helicone-Moderations-Enabled) failed: "
                            f"provider {provider.name!r} answered {reply.status}; the "
                            "request was not sent", code="moderation_failed")
    if any(isinstance(r, dict) and r.get("flagged") is True for r in results):
        raise BadRequest(FLAGGED_MESSAGE, code=FLAGGED_CODE)
