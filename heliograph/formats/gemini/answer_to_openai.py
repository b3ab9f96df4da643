"""Gemini's answers in OpenAI's shapes: GenerateContentResponse as a chat.completion,
errors as OpenAI error bodies (with the retry delay Gemini asks for). The stream's
responses: `stream_to_openai`; embeddings: `embeddings`."""

from __future__ import annotations

import re
from typing import Any

import orjson

from heliograph.formats.gemini import usage as gemini_usage
from heliograph.formats.gemini.request_from_openai import tool_call_id
from heliograph.formats.gemini.tables import ERROR_TYPES, FINISH_REASONS
from heliograph.formats.openai import chat
from heliograph.formats.openai import usage as openai_usage_object
from heliograph.formats.openai.chunk_fields import is_int, member, objects, text


def openai_usage(meta: Any) -> dict[str, Any]:
    return openai_usage_object.from_usage(gemini_usage.to_usage(meta))


def blocked_prompt(response: dict) -> str | None:
    """Why Gemini refused the prompt itself (no candidates at all), or None."""
    reason = text(member(response, "promptFeedback"), "blockReason")
    if reason and not candidates(response):
        return f"Gemini blocked the prompt ({reason}); it was not answered"
    return None


# A response is read leniently (chunk_fields): a member of the wrong type reads as absent,
# so a candidate or part that is no object, a text that is no string or a function call
# without a name adds nothing, and the caller gets what could be read.

def candidates(response: dict) -> list[tuple[int, dict]]:
    """(index, candidate) of a response's candidates; the index is the candidate's own
    when it is an integer, else its place."""
    out = []
    for n, candidate in enumerate(objects(response.get("candidates"))):
        index = candidate.get("index", n)
        out.append((index if is_int(index) else n, candidate))
    return out


def parts_of(candidate: dict) -> list:
    return member(candidate, "content").get("parts") or []


def finish_reason(reason: str | None, has_calls: bool) -> str | None:
    if reason is None:
        return None
    finish = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def split_parts(parts: Any) -> tuple[list[str], list[str], list[dict]]:
    """(texts, thoughts, tool calls) of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict] = []
    for part in objects(parts):
        if "functionCall" in part:
            call = member(part, "functionCall")
            name = text(call, "name")
            if name:
                calls.append(chat.tool_call(tool_call_id(text(part, "thoughtSignature")),
                                            name, orjson.dumps(call.get("args") or {}).decode()))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    return texts, thoughts, calls


def completion(response: dict, model: str, parallel_calls: bool = True) -> dict[str, Any]:
    """`parallel_calls` False: only the first function call is kept, since Gemini has no
    switch for OpenAI's parallel_tool_calls=false."""
    choices = []
    for index, candidate in candidates(response):
        texts, thoughts, calls = split_parts(parts_of(candidate))
        calls = calls if parallel_calls else calls[:1]
        finish = finish_reason(text(candidate, "finishReason") or "STOP", bool(calls))
        choices.append(chat.choice(index, "".join(texts) if texts else None, calls, finish,
                                   "".join(thoughts) or None))
    return chat.completion("chatcmpl-" + (text(response, "responseId") or ""),
                           text(response, "modelVersion") or model, choices,
                           openai_usage(response.get("usageMetadata")))


def error_of(parsed: Any) -> dict | None:
    if isinstance(parsed, list) and parsed:      # non-SSE streams answer with an array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def error_body(status: int, body: bytes, provider: str) -> bytes:
    error = error_of(chat.json_or_none(body)) or {}
    message = text(error, "message")
    if message:
        name = text(error, "status")
        kind = ERROR_TYPES.get(name or "", "server_error" if status >= 500
                               else "invalid_request_error")
        return chat.error_body(message, kind, name)
    return chat.provider_error_body(status, body, provider)


def retry_after(body: bytes) -> str | None:
    """Seconds from a RetryInfo detail ("retryDelay": "1.5s"), as a retry-after value."""
    error = error_of(chat.json_or_none(body)) or {}
    for detail in objects(error.get("details")):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", text(detail, "retryDelay") or "")
        if match:
            return match[1]
    return None
