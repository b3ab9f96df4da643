"""An OpenAI chat completion → a Responses API `response` object, for callers of
`/v1/responses` whose model only speaks chat. The stream translation (stream_from_chat)
builds its items and final object with the same functions.

Output items, in the order a Responses answer has them: a `reasoning` item when the
provider reported its thinking (`reasoning_content`, as its summary text), a `message`
with one `output_text` part, then one `function_call` item per tool call.
"""

from __future__ import annotations

import time
from typing import Any

from heliograph.formats.openai import chunk_fields
from heliograph.formats.responses.items import new_id

# Chat finish reasons that leave a Responses answer incomplete, and why.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage(chat_usage: Any) -> dict | None:
    """A chat usage object in the Responses API's names."""
    if not isinstance(chat_usage, dict):
        return None
    prompt = chat_usage.get("prompt_tokens") or 0
    completion = chat_usage.get("completion_tokens") or 0
    prompt_details = chat_usage.get("prompt_tokens_details") or {}
    completion_details = chat_usage.get("completion_tokens_details") or {}
    input_details = {"cached_tokens": prompt_details.get("cached_tokens") or 0}
    if prompt_details.get("cache_write_tokens"):  # priced at its own rate (costs.py)
        input_details["cache_write_tokens"] = prompt_details["cache_write_tokens"]
    return {"input_tokens": prompt, "input_tokens_details": input_details,
            "output_tokens": completion,
            "output_tokens_details": {
                "reasoning_tokens": completion_details.get("reasoning_tokens") or 0},
            "total_tokens": chat_usage.get("total_tokens") or prompt + completion}


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"type": "reasoning", "id": item_id, "summary": summary, "status": status}


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str = "completed") -> dict:
    content = [text_part(text)] if text is not None else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str,
                       status: str = "completed") -> dict:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def response_object(request: dict, response_id: str, created_at: int, model: str,
                    status: str, output: list[dict], usage_: dict | None,
                    finish_reason: str | None = None) -> dict[str, Any]:
    """The `response` object, echoing the request's settings as OpenAI does."""
    reason = INCOMPLETE.get(finish_reason or "")
    if status == "completed" and reason:
        status = "incomplete"
    reasoning = request.get("reasoning")
    if not isinstance(reasoning, dict):
        reasoning = {}
    return {
        "id": response_id, "object": "response", "created_at": created_at,
        "status": status, "background": False, "error": None,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "model": model, "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": "default", "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0), "truncation": request.get("truncation",
                                                                      "disabled"),
        "usage": usage_, "user": request.get("user"),
    }


def from_chat(completion: dict, request: dict, response_id: str | None = None) -> dict:
    """The response object for a chat completion answering `request`. The provider's
    members of the wrong type read as absent (chunk_fields), never an error of ours."""
    choices = chunk_fields.choices(completion)
    choice = choices[0][1] if choices else {}
    message = chunk_fields.member(choice, "message")
    output: list[dict] = []
    if reasoning := chunk_fields.text(message, "reasoning_content"):
        output.append(reasoning_item(new_id("rs_"), reasoning))
    content = message.get("content")
    calls = message.get("tool_calls")
    calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    if isinstance(content, str) and (content or not calls):
        output.append(message_item(new_id("msg_"), content))
    elif refusal := chunk_fields.text(message, "refusal"):
        item = message_item(new_id("msg_"), None)
        item["content"] = [{"type": "refusal", "refusal": refusal}]
        output.append(item)
    for call in calls:
        function = chunk_fields.member(call, "function")
        output.append(function_call_item(new_id("fc_"),
                                         chunk_fields.text(call, "id") or new_id("call_"),
                                         chunk_fields.text(function, "name") or "",
                                         chunk_fields.text(function, "arguments") or "{}"))
    created: Any = completion.get("created")
    return response_object(request, response_id or new_id("resp_"),
                           int(created) if chunk_fields.is_int(created) else int(time.time()),
                           chunk_fields.text(completion, "model") or request.get("model") or "",
                           "completed", output, usage(chunk_fields.usage(completion)),
                           chunk_fields.text(choice, "finish_reason"))
