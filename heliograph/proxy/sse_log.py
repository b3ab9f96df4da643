"""A legacy completions stream (`POST /v1/completions`, `stream: true`) relayed event by
event: the log gets the text of each choice, the model and the usage; the caller gets the
provider's events as they came, less the usage event when the gateway asked for it
itself (Helicone-Stream-Usage, on by default), so the caller sees the stream it asked for.
"""

from __future__ import annotations

from typing import Any

import orjson

from heliograph.formats.openai import chunk_fields
from heliograph.providers.sse import frame

# The answer's id, model and creation time for the log, each only if of its type.
_META = (("id", str), ("model", str), ("created", int))


class CompletionStreamLog:
    def __init__(self, strip_usage: bool) -> None:
        self.strip_usage = strip_usage
        self.done = False
        self.saw_text = False
        self.usage: dict | None = None
        self.meta: dict[str, Any] = {}
        self._texts: dict[int, list[str]] = {}
        self._finish: dict[int, Any] = {}
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to relay for this chunk (whole events only)."""
        self._buffer += chunk
        if b"\r" in self._buffer:
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        out: list[bytes] = []
        while (end := self._buffer.find(b"\n\n")) >= 0:
            event, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            kept = self._kept(event)
            if kept is not None:
                out.append(kept)
        return b"".join(out)

    def rest(self) -> bytes:
        """Whatever trailed the last complete event (relayed as it was)."""
        rest, self._buffer = self._buffer, b""
        return rest

    def _kept(self, event: bytes) -> bytes | None:
        """The event as relayed (maybe rewritten), or None to drop it."""
        whole = event + b"\n\n"
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n")
                          if line.startswith(b"data:"))
        if data == b"[DONE]":
            self.done = True
        if not data or data == b"[DONE]":
            return whole
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return whole
        if not isinstance(parsed, dict):
            return whole
        # The provider's event is relayed as it came but read leniently (chunk_fields): a
        # member of the wrong type (a list index, a number text, a list model) reads as
        # absent rather than failing the log after the stream was relayed.
        for key, of_type in _META:
            if key not in self.meta and isinstance(parsed.get(key), of_type):
                self.meta[key] = parsed[key]
        if isinstance(parsed.get("usage"), dict):
            self.usage = parsed["usage"]
        choices = parsed.get("choices")
        for index, choice in chunk_fields.choices(parsed):
            if text := chunk_fields.text(choice, "text"):
                self._texts.setdefault(index, []).append(text)
                self.saw_text = True
            if finish := chunk_fields.text(choice, "finish_reason"):
                self._finish[index] = finish
        if self.strip_usage and "usage" in parsed:
            # The usage event we asked for goes; `"usage": null` on the others too.
            if not choices:
                return None
            del parsed["usage"]
            return frame(orjson.dumps(parsed))
        return whole

    def completion(self) -> dict:
        """The stream as one text_completion object, for the log."""
        indexes = sorted(set(self._texts) | set(self._finish))
        return {**self.meta, "object": "text_completion", "stream": True,
                "choices": [{"index": i, "text": "".join(self._texts.get(i, ())),
                             "finish_reason": self._finish.get(i)} for i in indexes],
                "usage": self.usage}
