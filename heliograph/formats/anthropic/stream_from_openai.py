"""OpenAI chunks rendered as Anthropic's stream: message_start, content_block_start /
_delta / _stop per block (text, tool_use with input_json_delta, thinking), then
message_delta (stop reason, usage) and message_stop.

A chunk carrying Anthropic's own event (`NATIVE_KEY`, the stream came from Anthropic
for an Anthropic caller) is sent as that event, untouched. Either way every event sent is
also applied to a snapshot of the message, as the Anthropic SDK accumulates it, so the
log holds exactly what the caller received.
"""

from __future__ import annotations

import copy

import orjson

from heliograph.errors import GatewayError
from heliograph.formats.anthropic.answer_from_openai import (
    anthropic_usage,
    error_object,
    to_anthropic_message,
)
from heliograph.formats.anthropic.tables import STOP_REASONS
from heliograph.formats.openai import chunk_fields
from heliograph.providers.base import NATIVE_KEY
from heliograph.proxy.front import render_each


def frame(event: dict) -> bytes:
    return (b"event: " + str(event.get("type")).encode() + b"\ndata: "
            + orjson.dumps(event) + b"\n\n")


class AnthropicStream:
    content_type = b"text/event-stream; charset=utf-8"

    def __init__(self):
        self.native = False
        self.snapshot: dict | None = None
        self._json: dict[int, str] = {}          # tool_use block index → input JSON so far
        self._open: tuple[str, int] | None = None    # (kind, tool index) of the open block
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}   # OpenAI tool index → block index
        self._finish: str | None = None
        self._usage: dict | None = None
        self._ended = False
        self._ending: bytes | None = None

    # -- the snapshot (what the caller has received) ------------------------------------
    def _apply(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self.snapshot = copy.deepcopy(event.get("message") or {})
            self.snapshot.setdefault("content", [])
            return
        if self.snapshot is None:
            return
        content = self.snapshot["content"]
        index = event.get("index")
        if kind == "content_block_start":
            content.append(copy.deepcopy(event.get("content_block") or {}))
        elif kind == "content_block_delta" and isinstance(index, int) and index < len(content):
            # The caller got the event as it came; the snapshot takes what has its type.
            block, delta = content[index], chunk_fields.member(event, "delta")
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + (chunk_fields.text(delta, "text") or "")
            elif dtype == "input_json_delta":
                self._json[index] = self._json.get(index, "") + (
                    chunk_fields.text(delta, "partial_json") or "")
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + (
                    chunk_fields.text(delta, "thinking") or "")
            elif dtype == "signature_delta":
                block["signature"] = delta.get("signature")
            elif dtype == "citations_delta":
                block.setdefault("citations", []).append(delta.get("citation"))
        elif kind == "content_block_stop" and index in self._json:
            try:
                content[index]["input"] = orjson.loads(self._json[index] or "{}")
            except orjson.JSONDecodeError:
                content[index]["input"] = self._json[index]
        elif kind == "message_delta":
            self.snapshot.update({k: v for k, v in (event.get("delta") or {}).items()})
            usage = self.snapshot.setdefault("usage", {})
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})

    def _emit(self, event: dict) -> bytes:
        self._apply(event)
        return frame(event)

    # -- rendering ------------------------------------------------------------------------
    def render_batch(self, payloads: list[bytes]) -> bytes:
        return render_each(self, payloads)

    def render(self, payload: bytes) -> bytes:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(chunk, dict):
            return b""
        native = chunk.get(NATIVE_KEY)
        if isinstance(native, dict):
            self.native = True
            return self._emit(native)
        if self.native:
            return b""      # the native events already say everything
        return self._translate(chunk)

    def _start(self, chunk: dict) -> bytes:
        return self._emit({"type": "message_start", "message": {
            "id": "msg_" + str(chunk.get("id") or ""), "type": "message", "role": "assistant",
            "model": chunk.get("model") or "", "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return self._emit({"type": "content_block_stop", "index": self._blocks - 1})

    def _open_block(self, kind: str, block: dict, tool_index: int = -1) -> bytes:
        out = self._close()
        self._open = (kind, tool_index)
        out += self._emit({"type": "content_block_start", "index": self._blocks,
                           "content_block": block})
        self._blocks += 1
        return out

    def _translate(self, chunk: dict) -> bytes:
        # Members of the wrong type read as absent (chunk_fields): the caller's stream
        # goes on with what the chunk does say.
        choices = chunk_fields.choices(chunk)
        usage = chunk_fields.usage(chunk)
        if usage:
            self._usage = usage
        if not choices:
            return b""      # the usage chunk, or Azure's prompt-filter chunk
        out = b"" if self.snapshot is not None else self._start(chunk)
        _index, choice = choices[0]
        delta = chunk_fields.delta(choice)
        if reasoning := chunk_fields.text(delta, "reasoning_content"):
            if self._open is None or self._open[0] != "thinking":
                out += self._open_block("thinking", {"type": "thinking", "thinking": "",
                                                     "signature": ""})
            out += self._emit({"type": "content_block_delta", "index": self._blocks - 1,
                               "delta": {"type": "thinking_delta", "thinking": reasoning}})
        if content := chunk_fields.text(delta, "content"):
            if self._open is None or self._open[0] != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            out += self._emit({"type": "content_block_delta", "index": self._blocks - 1,
                               "delta": {"type": "text_delta", "text": content}})
        for tool_index, call, function in chunk_fields.tool_calls(delta):
            out += self._tool_delta(tool_index, call, function)
        if finish := chunk_fields.text(choice, "finish_reason"):
            self._finish = finish
        return out

    def _tool_delta(self, tool_index: int, call: dict, function: dict) -> bytes:
        out = b""
        if tool_index not in self._tool_blocks:
            out += self._open_block("tool", {
                "type": "tool_use", "id": chunk_fields.text(call, "id") or f"toolu_{tool_index}",
                "name": chunk_fields.text(function, "name") or "", "input": {}}, tool_index)
            self._tool_blocks[tool_index] = self._blocks - 1
        if arguments := chunk_fields.text(function, "arguments"):
            out += self._emit({"type": "content_block_delta",
                               "index": self._tool_blocks[tool_index],
                               "delta": {"type": "input_json_delta",
                                         "partial_json": arguments}})
        return out

    def finish(self) -> bytes:
        if self.native:
            return b""      # message_stop came from Anthropic
        if self._ending is not None:
            return self._ending
        return b"" if self._ended else self._end()

    def _end(self) -> bytes:
        self._ended = True
        out = b"" if self.snapshot is not None else self._start({})
        out += self._close()
        out += self._emit({"type": "message_delta",
                           "delta": {"stop_reason": STOP_REASONS.get(self._finish, "end_turn"),
                                     "stop_sequence": None},
                           "usage": anthropic_usage(self._usage)})
        return out + self._emit({"type": "message_stop"})

    def error(self, error: GatewayError) -> bytes:
        return frame(error_object(error))

    def logged(self, completion: dict) -> dict:
        # The pipeline logs before it sends the end: a stream that finished (it has a
        # finish reason) is ended now, so the log has its stop reason and usage.
        if self.snapshot is not None and not self.native and not self._ended and any(
                c.get("finish_reason") for c in completion.get("choices") or ()):
            self._ending = self._end()
        if self.snapshot is not None:
            snapshot = dict(self.snapshot, content=list(self.snapshot.get("content") or ()))
            # Blocks still open when a stream was cut: their input as far as it came.
            for index, text in self._json.items():
                block = snapshot["content"][index] if index < len(snapshot["content"]) else {}
                if block.get("type") == "tool_use" and block.get("input") == {} and text:
                    try:
                        block["input"] = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        block["input"] = text
            return snapshot
        return to_anthropic_message(completion)
