"""Gemini's streamed GenerateContentResponses as OpenAI chat.completion.chunk objects."""

from __future__ import annotations

from typing import Any

from heliograph.errors import UpstreamError
from heliograph.formats.gemini.answer_to_openai import (
    blocked_prompt,
    candidates,
    error_of,
    finish_reason,
    openai_usage,
    parts_of,
    split_parts,
)
from heliograph.formats.openai import chat
from heliograph.formats.openai.chunk_fields import member, text


class StreamTranslator:
    """Each streamed GenerateContentResponse holds new text (a delta), whole function
    calls, and, on the last one, the finish reason and final usage. Gemini sends no
    end marker: the stream is complete when a finish reason came before it closed."""

    def __init__(self, model: str, include_usage: bool, provider: str,
                 parallel_calls: bool = True):
        self.model, self.include_usage, self.provider = model, include_usage, provider
        self.parallel_calls = parallel_calls
        self.maker: chat.ChunkMaker | None = None
        self.usage: dict = {}
        self.tool_calls: dict[int, int] = {}      # candidate index → calls so far
        self.finished: set[int] = set()

    def feed(self, response: dict) -> list[dict[str, Any]]:
        error = error_of(response)
        if error is not None:
            raise UpstreamError(f"provider {self.provider!r} failed mid-stream: "
                                f"{error.get('status', '')} {error.get('message', '')}".strip(),
                                code="upstream_stream_error")
        blocked = blocked_prompt(response)
        if blocked:
            raise UpstreamError(blocked, code="content_filter", status=400)
        # Read leniently, as answers are (answer_to_openai): a response of the wrong shape
        # adds what could be read, and the stream goes on.
        out = []
        if self.maker is None:
            self.maker = chat.ChunkMaker("chatcmpl-" + (text(response, "responseId") or ""),
                                         text(response, "modelVersion") or self.model)
            out.append(self.maker.chunk({"role": "assistant", "content": ""}))
        usage = member(response, "usageMetadata")
        if usage:
            self.usage = usage
        for index, candidate in candidates(response):
            texts, thoughts, calls = split_parts(parts_of(candidate))
            if thoughts:
                out.append(self.maker.chunk({"reasoning_content": "".join(thoughts)}, index=index))
            if texts and "".join(texts):
                out.append(self.maker.chunk({"content": "".join(texts)}, index=index))
            first = self.tool_calls.get(index, 0)
            if not self.parallel_calls:
                calls = calls[:max(0, 1 - first)]
            if calls:
                self.tool_calls[index] = first + len(calls)
                out.append(self.maker.chunk({"tool_calls": [
                    dict(call, index=first + k) for k, call in enumerate(calls)]}, index=index))
            finish = finish_reason(text(candidate, "finishReason"),
                                   bool(self.tool_calls.get(index)))
            if finish is not None and index not in self.finished:
                self.finished.add(index)
                out.append(self.maker.chunk({}, finish, index=index))
        return out

    def end(self) -> list[dict[str, Any]] | None:
        """The closing chunks once the upstream stream ended; None when it was cut short."""
        if not self.finished or self.maker is None:
            return None
        if self.include_usage:
            return [self.maker.chunk(None, usage_=openai_usage(self.usage))]
        return []
