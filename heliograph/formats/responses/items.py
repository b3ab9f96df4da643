"""Responses API conversation items: the caller's `input` as a list of items, what a
stored conversation carries on to the next turn (`previous_response_id`), ids, and the
gateway's own compaction items.

A compaction item made by the gateway (for a provider without `/responses/compact`)
holds the summary as readable text behind a marker, not encrypted: the gateway has no
key of the provider's to encrypt with, and it must turn the item back into text for the
next turn's chat request.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from heliograph.errors import BadRequest

COMPACTION_MARKER = "heliograph-summary:v1:"
# Id prefixes by item type, as OpenAI's ids read.
ID_PREFIXES = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_",
               "reasoning": "rs_", "compaction": "cmp_"}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style (`resp_…`, `msg_…`, `fc_…`): the prefix and 48 hex digits."""
    return prefix + secrets.token_hex(24)


def input_items(value: Any) -> list[dict]:
    """`input` as a list of items: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": value}]}]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest("'input' must be a string or an array of input items (input)",
                         code="invalid_request")
    return value


def carried_over(conversation: list[dict], output: list[dict]) -> list[dict]:
    """The input items a follow-up turn starts with: the stored conversation and the
    stored response's output, as `portable` items."""
    return [portable(item) for item in conversation + output
            if isinstance(item, dict) and item.get("type") != "reasoning"]


def portable(item: dict) -> dict:
    """A stored item as input to any provider: without its id (a provider that stores
    responses itself would look its own ids up, and fail on ours). Reasoning items are
    left out by the callers: a chat provider cannot take them back, and OpenAI refuses
    reasoning it did not produce."""
    return {k: v for k, v in item.items() if k != "id"}


def listed(items: list[dict]) -> list[dict]:
    """Input items as `GET /v1/responses/{id}/input_items` lists them: each with an id,
    a type, and message content as parts."""
    out = []
    for item in items:
        item = dict(item)
        kind = item.setdefault("type", "message")
        if kind == "message":
            item.setdefault("id", new_id(ID_PREFIXES["message"]))
            if isinstance(item.get("content"), str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": part, "text": item["content"]}]
            item.setdefault("status", "completed")
        else:
            item.setdefault("id", new_id(ID_PREFIXES.get(kind, "item_")))
        out.append(item)
    return out


def compaction_item(summary: str) -> dict:
    encoded = base64.b64encode(summary.encode()).decode()
    return {"type": "compaction", "id": new_id("cmp_"),
            "encrypted_content": COMPACTION_MARKER + encoded}


def compaction_text(item: dict, where: str) -> str:
    """The summary a gateway-made compaction item holds."""
    content = item.get("encrypted_content")
    if isinstance(content, str) and content.startswith(COMPACTION_MARKER):
        try:
            summary = base64.b64decode(content[len(COMPACTION_MARKER):], validate=True)
            return "Summary of the conversation so far:\n" + summary.decode()
        except (ValueError, UnicodeDecodeError):
            pass
    raise BadRequest("this compaction item was not made by this gateway (a provider's "
                     f"encrypted compaction cannot be read by another provider) ({where})",
                     code="invalid_request")
