"""Anthropic Messages wire format: requests into an `Ask`, the `Answer` into a message or
the documented SSE event sequence (no I/O here).

Validation mirrors the rules of Anthropic's API that translation bugs would break:
`max_tokens` is required, roles are user/assistant only (system is a top-level field),
every `tool_use` is answered by a `tool_result` in the very next message and every
`tool_result` answers a `tool_use` of the message just before, temperature is 0..1.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .behavior import Behavior
from .conversation import (
    Answer,
    Ask,
    InvalidRequest,
    Tool,
    Turn,
    answer,
    new_id,
    split_chars,
    split_words,
)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
ERROR_MESSAGES = {
    400: "Invalid request (fake).",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "model: not found (fake)",
    429: "This request would exceed the rate limit for your organization of 50 requests "
         "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    500: "Internal server error",
    529: "Overloaded",
}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    type_ = ERROR_TYPES.get(status) or ("api_error" if status >= 500
                                        else "invalid_request_error")
    return {"type": "error",
            "error": {"type": type_,
                      "message": message or ERROR_MESSAGES.get(status, f"Error ({status})")},
            "request_id": new_id("req_011", 24)}


# -- request → Ask ---------------------------------------------------------------

def _blocks(content: Any, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        if any(b.get("type") == "text" and not b.get("text") for b in content):
            raise InvalidRequest(f"{where}: text content blocks must be non-empty")
        return content
    raise InvalidRequest(f"{where}: Input should be a valid string or a list of blocks")


def _text(blocks: list[dict]) -> str:
    return " ".join(b["text"] for b in blocks
                    if b.get("type") == "text" and isinstance(b.get("text"), str))


def _check_image(block: dict, where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in IMAGE_TYPES:
            raise InvalidRequest(f"{where}.source.base64.media_type: Input should be "
                                 "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
        try:
            base64.b64decode(source.get("data") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise InvalidRequest(f"{where}.source.base64.data: invalid base64 data") from None
    elif kind == "url":
        if not str(source.get("url", "")).startswith(("http://", "https://")):
            raise InvalidRequest(f"{where}.source.url.url: must be an http(s) URL")
    elif kind != "file":
        raise InvalidRequest(f"{where}.source: Input tag '{kind}' does not match any of the "
                             "expected tags: 'base64', 'url', 'file'")


def _tool_result_text(block: dict) -> str:
    content = block.get("content")
    return content if isinstance(content, str) else _text(content or [])


def _user_turns(blocks: list[dict], pending: set[str], i: int) -> list[Turn]:
    results, texts, images = [], [], 0
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "tool_result":
            if block.get("tool_use_id") not in pending:
                raise InvalidRequest(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                    "block must have a corresponding `tool_use` block in the previous message.")
            pending.discard(block["tool_use_id"])
            results.append(_tool_result_text(block))
        elif kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "image":
            _check_image(block, f"messages.{i}.content.{j}")
            images += 1
        elif kind == "tool_use":
            raise InvalidRequest(f"messages.{i}.content.{j}: `tool_use` blocks can only be "
                                 "in `assistant` messages")
    if pending:
        raise InvalidRequest(
            f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(sorted(pending))}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message.")
    turns = [Turn("tool", tool_results=results)] if results else []
    if texts or images:
        turns.append(Turn("user", texts, images))
    return turns


def _tool_use_ids(blocks: list[dict], i: int) -> set[str]:
    """An assistant message's tool_use ids, which Anthropic requires to be strings (a
    missing one used to crash the error message listing the unanswered ids)."""
    ids: set[str] = set()
    for j, block in enumerate(blocks):
        if block.get("type") != "tool_use":
            continue
        if block.get("id") is None:
            raise InvalidRequest(f"messages.{i}.content.{j}.tool_use.id: Field required")
        if not isinstance(block["id"], str):
            raise InvalidRequest(f"messages.{i}.content.{j}.tool_use.id: Input should be a "
                                 "valid string")
        ids.add(block["id"])
    return ids


def parse(body: Any) -> Ask:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required" if max_tokens is None
                             else "max_tokens: Input should be greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float))
                                        and 0 <= temperature <= 1):
        raise InvalidRequest("temperature: Input should be less than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("messages: Field required" if messages is None
                             else "messages: at least one message is required")
    turns: list[Turn] = []
    system = body.get("system")
    if system:
        turns.append(Turn("system", [_text(_blocks(system, "system"))]))
    pending: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        blocks = _blocks(m.get("content"), f"messages.{i}.content")
        if role == "user":
            turns += _user_turns(blocks, pending, i)
        elif role == "assistant":
            if pending:
                raise InvalidRequest(f"messages.{i}: `tool_use` ids were found without "
                                     "`tool_result` blocks immediately after")
            pending = _tool_use_ids(blocks, i)
            turns.append(Turn("assistant", [_text(blocks)]))
        else:
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    tools = []
    for i, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            continue  # server tools (web search, bash…) are not called by the fake
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise InvalidRequest(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        tools.append(Tool(str(tool.get("name")), schema))
    ask = Ask(body["model"], turns, tools, max_tokens=max_tokens,
              stop=[s for s in body.get("stop_sequences") or () if isinstance(s, str)])
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "any":
        ask.tool_choice = "required"
    elif choice.get("type") == "none":
        ask.tool_choice = "none"
    elif choice.get("type") == "tool":
        ask.forced_tool = choice.get("name")
    ask.parallel_tools = not choice.get("disable_parallel_tool_use")
    return ask


# -- Answer → message / events -------------------------------------------------------

def usage(a: Answer) -> dict[str, Any]:
    # Anthropic's input_tokens excludes cache reads and writes; OpenAI's prompt_tokens
    # includes them: the fake's Answer follows OpenAI, so subtract here.
    out: dict[str, Any] = {
        "input_tokens": max(0, a.prompt_tokens - a.cached_tokens - a.cache_write_tokens),
        "cache_creation_input_tokens": a.cache_write_tokens,
        "cache_read_input_tokens": a.cached_tokens,
        "output_tokens": a.completion_tokens, "service_tier": "standard"}
    if a.reasoning_tokens:
        # Thinking is part of output_tokens; recent API versions also break it out.
        out["output_tokens_details"] = {"thinking_tokens": a.reasoning_tokens}
    return out


class MessageReply:
    def __init__(self, body: dict, b: Behavior):
        self.model = body["model"]
        self.id = new_id("msg_01", 22)
        self.answer = answer(parse(body), b, id_prefix="toolu_01", id_length=22)
        a = self.answer
        self.stop_reason = "stop_sequence" if a.stop_sequence else STOP_REASONS[a.finish]
        self.usage = usage(a)
        # Extended thinking asked for: the answer opens with a thinking block.
        thinking = body.get("thinking")
        self.thinking = thinking_text(body) if isinstance(thinking, dict) and \
            thinking.get("type") == "enabled" else None

    @property
    def total_tokens(self) -> int:
        return self.answer.total_tokens

    def content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.thinking:
            blocks.append({"type": "thinking", "thinking": self.thinking,
                           "signature": "fake-signature"})
        if self.answer.text:
            blocks.append({"type": "text", "text": self.answer.text})
        for call in self.answer.tool_calls:
            blocks.append({"type": "tool_use", "id": call.id, "name": call.name,
                           "input": orjson.loads(call.arguments)})
        return blocks

    def message(self, content: list | None = None, finished: bool = True) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": self.content() if content is None else content,
                "stop_reason": self.stop_reason if finished else None,
                "stop_sequence": self.answer.stop_sequence if finished else None,
                "usage": self.usage if finished else dict(self.usage, output_tokens=1)}

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The sequence Anthropic documents: message_start, then per content block
        content_block_start / _delta… / _stop (a ping after the first start),
        message_delta with the stop reason and output tokens, message_stop."""
        out: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start",
                               "message": self.message(content=[], finished=False)})]
        for index, block in enumerate(self.content()):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in split_words(block["text"])]
            elif block["type"] == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": p}
                          for p in split_words(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            else:
                start = dict(block, input={})
                arguments = orjson.dumps(block["input"]).decode()
                deltas = [{"type": "input_json_delta", "partial_json": p}
                          for p in ["", *split_chars(arguments)]]
            out.append(("content_block_start", {"type": "content_block_start",
                                                "index": index, "content_block": start}))
            if index == 0:
                out.append(("ping", {"type": "ping"}))
            out += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                             "delta": d}) for d in deltas]
            out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        if len(out) == 1:
            out.append(("ping", {"type": "ping"}))
        out.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason,
                      "stop_sequence": self.answer.stop_sequence},
            "usage": {"output_tokens": self.answer.completion_tokens}}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out


def thinking_text(body: dict) -> str:
    """What the fake "thinks": about the last user message's text."""
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                b.get("text", "") for b in content or () if isinstance(b, dict)
                and isinstance(b.get("text"), str))
            if text:
                return f"Thinking about: {text}"
    return "Thinking."


# (id, display name, created_at) as GET /v1/models lists them.
MODELS = [
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
]


def models() -> dict[str, Any]:
    data = [{"type": "model", "id": model_id, "display_name": name, "created_at": created}
            for model_id, name, created in MODELS]
    return {"data": data, "has_more": False, "first_id": data[0]["id"],
            "last_id": data[-1]["id"]}


def count_tokens(body: Any) -> dict[str, int]:
    ask = parse(dict(body, max_tokens=1) if isinstance(body, dict) else body)
    return {"input_tokens": answer(ask, Behavior()).prompt_tokens}


def wrong_shape_message(message: dict[str, Any]) -> dict[str, Any]:
    """The message with members of the wrong types around its own blocks (``wrong-shape``):
    blocks that are no objects, a text that is a number, a tool_use whose name is a list
    and input a string, thinking that is an object, a list stop reason and id, a number
    model, an input token count that is a list. What a reader can use is the real blocks
    and the output token count."""
    return dict(message, id=["not a string"], model=7, stop_reason=["end_turn"],
                content=["no block", 5, {"type": "text", "text": 5},
                         {"type": "tool_use", "id": 3, "name": ["n"], "input": "no object"},
                         {"type": "thinking", "thinking": {"a": 1}}, *message["content"]],
                usage={"input_tokens": [1],
                       "output_tokens": message["usage"]["output_tokens"]})
