"""Anthropic's stream events as OpenAI chat.completion.chunk objects (the provider
adapter's side: an Anthropic upstream for a pipeline that speaks OpenAI)."""

from __future__ import annotations

from typing import Any

from heliograph.errors import UpstreamError
from heliograph.formats.anthropic.answer_to_openai import openai_usage
from heliograph.formats.anthropic.blocks import tool_use
from heliograph.formats.anthropic.tables import ERROR_STATUSES, FINISH_REASONS
from heliograph.formats.openai import chat
from heliograph.formats.openai.chunk_fields import is_int, member, text


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
        self.maker: chat.ChunkMaker | None = None
        self.blocks: dict[int, tuple[str, int]] = {}
        self.tool_calls = 0
        self.usage: dict[str, Any] = {}
        self.done = False

    @property
    def _chunks(self) -> chat.ChunkMaker:
        assert self.maker is not None, "feed() rejects events before message_start"
        return self.maker

    def bare(self) -> dict[str, Any]:
        """A chunk that says nothing: carries a native event no OpenAI chunk stands for."""
        return self._chunks.chunk(None)

    def feed(self, event: dict) -> list[dict[str, Any]]:
        # A member of the wrong type reads as absent (chunk_fields): an event of the wrong
        # shape adds nothing, and the stream goes on.
        kind = event.get("type")
        if kind == "error":
            error = member(event, "error")
            error_type = text(error, "type")
            raise UpstreamError(f"provider {self.provider!r} failed mid-stream: "
                                f"{error_type or 'error'}: {text(error, 'message') or ''}",
                                code=error_type or "upstream_error",
                                status=ERROR_STATUSES.get(error_type, 502))
        if kind == "message_start":
            message = member(event, "message")
            self.maker = chat.ChunkMaker(text(message, "id") or "", text(message, "model") or "")
            self.usage.update(member(message, "usage"))
            return [self.maker.chunk({"role": "assistant", "content": ""})]
        if self.maker is None:
            raise UpstreamError(f"provider {self.provider!r} sent {kind!r} before "
                                "message_start", code="upstream_malformed")
        index = event.get("index")
        if kind == "content_block_start" and is_int(index):
            return self._start(index, member(event, "content_block"))
        if kind == "content_block_delta" and is_int(index):
            return self._delta(index, member(event, "delta"))
        if kind == "message_delta":
            self.usage.update({k: v for k, v in member(event, "usage").items()
                               if v is not None})
            reason = text(member(event, "delta"), "stop_reason")
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
        call = tool_use(block) if kind == "tool_use" else None
        if kind == "tool_use" and call is None:
            self.blocks[index] = ("unusable tool_use", 0)   # its deltas are dropped too
        elif call is not None and call[0] == self.json_tool:
            self.blocks[index] = ("json", 0)
        elif call is not None:
            self.blocks[index] = ("tool", self.tool_calls)
            self.tool_calls += 1
            opening = {"index": self.blocks[index][1], "id": call[1], "type": "function",
                       "function": {"name": call[0], "arguments": ""}}
            return [self._chunks.chunk({"tool_calls": [opening]})]
        elif kind == "text":
            self.blocks[index] = ("text", 0)
            if content := text(block, "text"):
                return [self._chunks.chunk({"content": content})]
        else:
            self.blocks[index] = (str(kind), 0)
        return []

    def _delta(self, index: Any, delta: dict) -> list[dict[str, Any]]:
        kind, tool_index = self.blocks.get(index, ("", 0))
        dtype = delta.get("type")
        if dtype == "text_delta" and (content := text(delta, "text")):
            return [self._chunks.chunk({"content": content})]
        if dtype == "input_json_delta" and (piece := text(delta, "partial_json")):
            if kind == "json":
                return [self._chunks.chunk({"content": piece})]
            if kind == "tool":
                return [self._chunks.chunk({"tool_calls": [
                    {"index": tool_index, "function": {"arguments": piece}}]})]
        if dtype == "thinking_delta" and (thinking := text(delta, "thinking")):
            return [self._chunks.chunk({"reasoning_content": thinking})]
        return []
