"""SSE pass-through: reassemble what the caller receives (for the log), capture usage and
time to first token, and hide the usage we asked for when the caller did not ask."""

from __future__ import annotations

import orjson


def event_object(payload: bytes) -> dict | None:
    """The JSON object an SSE data payload carries; None for anything else (relayed as is)."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


class StreamAccumulator:
    def __init__(self, strip_usage: bool):
        # True when we added stream_options.include_usage ourselves: the caller must see
        # exactly the stream it asked for, so the usage chunk and "usage": null go.
        self.strip_usage = strip_usage
        self.usage: dict | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.created: int | None = None
        self.saw_content = False
        self.done = False
        self._choices: dict[int, dict] = {}

    def process(self, payload: bytes) -> bytes | None:
        """Account for one event; return the payload to forward (maybe rewritten), or None
        to drop it."""
        if payload == b"[DONE]":
            self.done = True
            return payload
        chunk = event_object(payload)
        if chunk is None:
            return payload
        if not self.id:     # Azure opens with a prompt-filter chunk whose id is ""
            self.id = chunk.get("id")
            self.model = chunk.get("model")
            self.created = chunk.get("created")
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                self._merge_choice(choice)
        if self.strip_usage and "usage" in chunk:
            if not choices and usage:
                return None
            del chunk["usage"]
            return orjson.dumps(chunk)
        return payload

    def _merge_choice(self, choice: dict) -> None:
        index = choice.get("index", 0)
        acc = self._choices.get(index)
        if acc is None:
            acc = self._choices[index] = {"index": index, "role": "assistant", "content": None,
                                          "tool_calls": {}, "finish_reason": None}
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            acc["content"] = (acc["content"] or "") + content
            self.saw_content = True
        if delta.get("role"):
            acc["role"] = delta["role"]
        for call in delta.get("tool_calls") or ():
            self.saw_content = True
            slot = acc["tool_calls"].setdefault(call.get("index", 0), {
                "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            if call.get("id"):
                slot["id"] = call["id"]
            if call.get("type"):
                slot["type"] = call["type"]
            function = call.get("function") or {}
            if function.get("name"):
                slot["function"]["name"] += function["name"]
            if function.get("arguments"):
                slot["function"]["arguments"] += function["arguments"]
        if choice.get("finish_reason"):
            acc["finish_reason"] = choice["finish_reason"]

    def completion(self) -> dict:
        """The stream as one chat.completion object, for the log."""
        choices = []
        for index in sorted(self._choices):
            acc = self._choices[index]
            message = {"role": acc["role"], "content": acc["content"]}
            if acc["tool_calls"]:
                message["tool_calls"] = [acc["tool_calls"][i] for i in sorted(acc["tool_calls"])]
            choices.append({"index": index, "message": message,
                            "finish_reason": acc["finish_reason"]})
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "choices": choices, "usage": self.usage,
                "stream": True}
