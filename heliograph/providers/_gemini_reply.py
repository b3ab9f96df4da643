"""Gemini's answers in OpenAI's shapes: GenerateContentResponse as a chat.completion, the
stream's responses as chunks, errors as OpenAI error bodies, embeddings as OpenAI's list.

Usage: `promptTokenCount` (+ `toolUsePromptTokenCount`) is every input token, cached
ones (`cachedContentTokenCount`) included, as OpenAI counts; `candidatesTokenCount`
excludes thinking, so completion_tokens = candidates + `thoughtsTokenCount`, and the
thinking share is reported as reasoning_tokens (priced as output, Gemini's rule).
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

import orjson

from heliograph.errors import UpstreamError
from heliograph.providers import _openai_shapes as shapes
from heliograph.providers._gemini_request import tool_call_id

FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                  "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                  "IMAGE_SAFETY": "content_filter", "IMAGE_PROHIBITED_CONTENT": "content_filter"}
ERROR_TYPES = {"INVALID_ARGUMENT": "invalid_request_error",
               "FAILED_PRECONDITION": "invalid_request_error",
               "OUT_OF_RANGE": "invalid_request_error", "NOT_FOUND": "invalid_request_error",
               "UNAUTHENTICATED": "authentication_error",
               "PERMISSION_DENIED": "permission_error",
               "RESOURCE_EXHAUSTED": "rate_limit_error"}


def _count(meta: dict, name: str) -> int:
    value = meta.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(meta: dict) -> dict[str, Any]:
    thoughts = _count(meta, "thoughtsTokenCount")
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    return shapes.usage(prompt, _count(meta, "candidatesTokenCount") + thoughts,
                        _count(meta, "cachedContentTokenCount"), 0, thoughts)


def blocked_prompt(response: dict) -> str | None:
    """Why Gemini refused the prompt itself (no candidates at all), or None."""
    feedback = response.get("promptFeedback") or {}
    if not response.get("candidates") and feedback.get("blockReason"):
        return (f"Gemini blocked the prompt ({feedback['blockReason']}); "
                "it was not answered")
    return None


def _finish(reason: Any, has_calls: bool) -> str | None:
    if reason is None:
        return None
    finish = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def _split(parts: list) -> tuple[list[str], list[str], list[dict]]:
    """(texts, thoughts, tool calls) of a candidate's parts."""
    texts, thoughts, calls = [], [], []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            calls.append(shapes.tool_call(tool_call_id(part.get("thoughtSignature")),
                                          call.get("name"),
                                          orjson.dumps(call.get("args") or {}).decode()))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    return texts, thoughts, calls


def completion(response: dict, model: str, parallel_calls: bool = True) -> dict[str, Any]:
    """`parallel_calls` False: only the first function call is kept, since Gemini has no
    switch for OpenAI's parallel_tool_calls=false."""
    choices = []
    for n, candidate in enumerate(response.get("candidates") or ()):
        texts, thoughts, calls = _split((candidate.get("content") or {}).get("parts") or [])
        calls = calls if parallel_calls else calls[:1]
        finish = _finish(candidate.get("finishReason") or "STOP", bool(calls))
        choices.append(shapes.choice(candidate.get("index", n), "".join(texts) if texts
                                     else None, calls, finish, "".join(thoughts) or None))
    return shapes.completion("chatcmpl-" + str(response.get("responseId") or ""),
                             response.get("modelVersion") or model, choices,
                             openai_usage(response.get("usageMetadata") or {}))


def _gemini_error(parsed: Any) -> dict | None:
    if isinstance(parsed, list) and parsed:      # non-SSE streams answer with an array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def error_body(status: int, body: bytes, provider: str) -> bytes:
    error = _gemini_error(shapes.json_or_none(body))
    if error is not None and error.get("message"):
        name = str(error.get("status") or "")
        kind = ERROR_TYPES.get(name, "server_error" if status >= 500 else "invalid_request_error")
        return shapes.error_body(str(error["message"]), kind, name or None)
    text = body.decode("utf-8", "replace").strip()[:300]
    return shapes.error_body(f"provider {provider!r} answered {status}"
                             + (f": {text}" if text else ""), "api_error")


def retry_after(body: bytes) -> str | None:
    """Seconds from a RetryInfo detail ("retryDelay": "1.5s"), as a retry-after value."""
    error = _gemini_error(shapes.json_or_none(body))
    for detail in (error or {}).get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(delay or ""))
        if match:
            return match[1]
    return None


class StreamTranslator:
    """Each streamed GenerateContentResponse holds new text (a delta), whole function
    calls, and, on the last one, the finish reason and final usage. Gemini sends no
    end marker: the stream is complete when a finish reason came before it closed."""

    def __init__(self, model: str, include_usage: bool, provider: str,
                 parallel_calls: bool = True):
        self.model, self.include_usage, self.provider = model, include_usage, provider
        self.parallel_calls = parallel_calls
        self.maker: shapes.ChunkMaker | None = None
        self.usage: dict = {}
        self.tool_calls: dict[int, int] = {}      # candidate index → calls so far
        self.finished: set[int] = set()

    def feed(self, response: dict) -> list[dict[str, Any]]:
        error = _gemini_error(response)
        if error is not None:
            raise UpstreamError(f"provider {self.provider!r} failed mid-stream: "
                                f"{error.get('status', '')} {error.get('message', '')}".strip(),
                                code="upstream_stream_error")
        blocked = blocked_prompt(response)
        if blocked:
            raise UpstreamError(blocked, code="content_filter", status=400)
        out = []
        if self.maker is None:
            self.maker = shapes.ChunkMaker("chatcmpl-" + str(response.get("responseId") or ""),
                                           response.get("modelVersion") or self.model)
            out.append(self.maker.chunk({"role": "assistant", "content": ""}))
        if response.get("usageMetadata"):
            self.usage = response["usageMetadata"]
        for n, candidate in enumerate(response.get("candidates") or ()):
            index = candidate.get("index", n)
            texts, thoughts, calls = _split((candidate.get("content") or {}).get("parts") or [])
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
            finish = _finish(candidate.get("finishReason"), bool(self.tool_calls.get(index)))
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


# -- embeddings ---------------------------------------------------------------------

def estimate_tokens(text: str) -> int:
    """Gemini's embedding API reports no usage; about four characters a token."""
    return max(1, (len(text) + 3) // 4)


def embeddings(response: dict, texts: list[str], model: str, base64_out: bool
               ) -> dict[str, Any]:
    data = []
    for index, item in enumerate(response.get("embeddings") or ()):
        values = [float(v) for v in (item or {}).get("values") or ()]
        embedding: Any = values
        if base64_out:
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(estimate_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
