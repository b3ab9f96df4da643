"""Anthropic's answers in OpenAI's shapes: a message as a chat.completion, the stream's
events as chat.completion.chunk objects, errors as OpenAI error bodies.

Usage: Anthropic's `input_tokens` excludes cache reads and writes, OpenAI's
`prompt_tokens` includes them; the cache counts go to `prompt_tokens_details`
(`cached_tokens`, `cache_write_tokens`) so both are priced at their own rates.
"""

from __future__ import annotations

from typing import Any

import orjson

from heliograph.errors import UpstreamError
from heliograph.providers import _openai_shapes as shapes

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter",
                  "model_context_window_exceeded": "length"}
# Mid-stream error events carry a type but no status; these are the statuses it implies.
ERROR_STATUSES = {"invalid_request_error": 400, "authentication_error": 401,
                  "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                  "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}


def _count(usage: dict, name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: dict) -> dict[str, Any]:
    cache_write = _count(usage, "cache_creation_input_tokens")
    cache_read = _count(usage, "cache_read_input_tokens")
    details = usage.get("output_tokens_details")
    thinking = _count(details, "thinking_tokens") if isinstance(details, dict) else 0
    return shapes.usage(_count(usage, "input_tokens") + cache_write + cache_read,
                        _count(usage, "output_tokens"), cache_read, cache_write, thinking)


def _arguments(block: dict) -> str:
    return orjson.dumps(block.get("input") or {}).decode()


def completion(message: dict, json_tool: str | None) -> dict[str, Any]:
    texts, calls, thinking = [], [], []
    for block in message.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use" and block.get("name") == json_tool:
            texts.append(_arguments(block))      # JSON mode: the answer is the tool's input
        elif kind == "tool_use":
            calls.append(shapes.tool_call(block.get("id"), block.get("name"), _arguments(block)))
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
    finish = FINISH_REASONS.get(message.get("stop_reason"), "stop")
    if finish == "tool_calls" and not calls:
        finish = "stop"
    choice = shapes.choice(0, "".join(texts) if texts else None, calls, finish,
                           "".join(thinking) or None)
    return shapes.completion(message.get("id") or "", message.get("model") or "", [choice],
                             openai_usage(message.get("usage") or {}))


def error_body(status: int, body: bytes, provider: str) -> bytes:
    parsed = shapes.json_or_none(body)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = error.get("type") or "api_error"
        return shapes.error_body(str(error["message"]), kind, kind)
    text = body.decode("utf-8", "replace").strip()[:300]
    return shapes.error_body(f"provider {provider!r} answered {status}"
                             + (f": {text}" if text else ""), "api_error")


class StreamTranslator:
    """Feed Anthropic events in order; get the OpenAI chunks each one becomes.

    Content blocks map by kind: text → `content` deltas, tool_use → a `tool_calls` entry
    with its own index (counting tool calls only, as OpenAI does) whose `input_json_delta`
    pieces stream as `arguments`, thinking → `reasoning_content`. message_delta brings the
    finish reason; message_stop the usage chunk (when asked for) and the end.
    """

    def __init__(self, json_tool: str | None, include_usage: bool, provider: str):
        self.json_tool = json_tool
        self.include_usage = include_usage
        self.provider = provider
        self.maker: shapes.ChunkMaker | None = None
        self.blocks: dict[int, tuple[str, int]] = {}
        self.tool_calls = 0
        self.usage: dict[str, Any] = {}
        self.done = False

    def bare(self) -> dict[str, Any]:
        """A chunk that says nothing: carries a native event no OpenAI chunk stands for."""
        return self.maker.chunk(None)

    def feed(self, event: dict) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "error":
            error = event.get("error") or {}
            raise UpstreamError(f"provider {self.provider!r} failed mid-stream: "
                                f"{error.get('type', 'error')}: {error.get('message', '')}",
                                code=str(error.get("type") or "upstream_error"),
                                status=ERROR_STATUSES.get(error.get("type"), 502))
        if kind == "message_start":
            message = event.get("message") or {}
            self.maker = shapes.ChunkMaker(message.get("id") or "", message.get("model") or "")
            self.usage.update(message.get("usage") or {})
            return [self.maker.chunk({"role": "assistant", "content": ""})]
        if self.maker is None:
            raise UpstreamError(f"provider {self.provider!r} sent {kind!r} before "
                                "message_start", code="upstream_malformed")
        if kind == "content_block_start":
            return self._start(event.get("index"), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(event.get("index"), event.get("delta") or {})
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items()
                               if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            finish = FINISH_REASONS.get(reason, "stop")
            if finish == "tool_calls" and not self.tool_calls:
                finish = "stop"      # only the JSON-mode tool was called
            return [self.maker.chunk({}, finish)]
        if kind == "message_stop":
            self.done = True
            if self.include_usage:
                return [self.maker.chunk(None, usage_=openai_usage(self.usage))]
        return []   # ping, content_block_stop, and event types added later

    def _start(self, index: Any, block: dict) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") == self.json_tool:
            self.blocks[index] = ("json", 0)
        elif kind == "tool_use":
            self.blocks[index] = ("tool", self.tool_calls)
            self.tool_calls += 1
            opening = {"index": self.blocks[index][1], "id": block.get("id"),
                       "type": "function",
                       "function": {"name": block.get("name"), "arguments": ""}}
            return [self.maker.chunk({"tool_calls": [opening]})]
        elif kind == "text":
            self.blocks[index] = ("text", 0)
            if block.get("text"):
                return [self.maker.chunk({"content": block["text"]})]
        else:
            self.blocks[index] = (str(kind), 0)
        return []

    def _delta(self, index: Any, delta: dict) -> list[dict[str, Any]]:
        kind, tool_index = self.blocks.get(index, ("", 0))
        dtype = delta.get("type")
        if dtype == "text_delta" and delta.get("text"):
            return [self.maker.chunk({"content": delta["text"]})]
        if dtype == "input_json_delta" and delta.get("partial_json"):
            piece = delta["partial_json"]
            if kind == "json":
                return [self.maker.chunk({"content": piece})]
            if kind == "tool":
                return [self.maker.chunk({"tool_calls": [
                    {"index": tool_index, "function": {"arguments": piece}}]})]
        if dtype == "thinking_delta" and delta.get("thinking"):
            return [self.maker.chunk({"reasoning_content": delta["thinking"]})]
        return []
