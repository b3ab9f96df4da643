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


def openai_usage(meta: Any) -> dict[str, Any]:
    return openai_usage_object.from_usage(gemini_usage.to_usage(meta))


def blocked_prompt(response: dict) -> str | None:
    """Why Gemini refused the prompt itself (no candidates at all), or None."""
    feedback = response.get("promptFeedback") or {}
    if not response.get("candidates") and feedback.get("blockReason"):
        return (f"Gemini blocked the prompt ({feedback['blockReason']}); "
                "it was not answered")
    return None


def finish_reason(reason: Any, has_calls: bool) -> str | None:
    if reason is None:
        return None
    finish = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def split_parts(parts: list) -> tuple[list[str], list[str], list[dict]]:
    """(texts, thoughts, tool calls) of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            calls.append(chat.tool_call(tool_call_id(part.get("thoughtSignature")),
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
        texts, thoughts, calls = split_parts((candidate.get("content") or {}).get("parts") or [])
        calls = calls if parallel_calls else calls[:1]
        finish = finish_reason(candidate.get("finishReason") or "STOP", bool(calls))
        choices.append(chat.choice(candidate.get("index", n), "".join(texts) if texts
                                     else None, calls, finish, "".join(thoughts) or None))
    return chat.completion("chatcmpl-" + str(response.get("responseId") or ""),
                             response.get("modelVersion") or model, choices,
                             openai_usage(response.get("usageMetadata") or {}))


def error_of(parsed: Any) -> dict | None:
    if isinstance(parsed, list) and parsed:      # non-SSE streams answer with an array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def error_body(status: int, body: bytes, provider: str) -> bytes:
    error = error_of(chat.json_or_none(body))
    if error is not None and error.get("message"):
        name = str(error.get("status") or "")
        kind = ERROR_TYPES.get(name, "server_error" if status >= 500 else "invalid_request_error")
        return chat.error_body(str(error["message"]), kind, name or None)
    return chat.provider_error_body(status, body, provider)


def retry_after(body: bytes) -> str | None:
    """Seconds from a RetryInfo detail ("retryDelay": "1.5s"), as a retry-after value."""
    error = error_of(chat.json_or_none(body))
    for detail in (error or {}).get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(delay or ""))
        if match:
            return match[1]
    return None
