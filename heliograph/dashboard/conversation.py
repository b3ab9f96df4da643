"""A logged request and response as a conversation: a list of messages, each a role and
parts (text, image, tool call, tool result, other JSON), whatever the wire format was —
OpenAI chat, Anthropic messages, the Responses API, embeddings.

Only data: the template renders it, escaped. Images become thumbnails only when they are
inline `data:image/...` URLs; a remote image URL is shown as its address, never fetched
(the dashboard makes no request off its own origin).
"""

from __future__ import annotations

import json
from typing import Any

from heliograph.formats.openai.chunk_fields import member, objects

# A part's text shown up to this length (a whole book pasted into a prompt would make a
# page of tens of MB); the request page's download holds it whole.
MAX_PART_CHARS = 100_000
SAFE_IMAGE_PREFIXES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;",
                       "data:image/webp;")


def _text(text: Any) -> dict:
    return {"kind": "text", "text": text if isinstance(text, str) else _json(text)}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _image(url: Any) -> dict:
    url = url if isinstance(url, str) else ""
    if url.startswith(SAFE_IMAGE_PREFIXES):
        return {"kind": "image", "src": url}
    return {"kind": "image_link", "text": url[:300] or "(image)"}


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        try:
            return _json(json.loads(value))
        except ValueError:
            return value
    return _json(value)


def _openai_parts(content: Any) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text(content)]
    if not isinstance(content, list):
        return [_text(content)]
    parts = []
    for block in content:
        if not isinstance(block, dict):
            parts.append(_text(block))
        elif block.get("type") in ("text", "input_text", "output_text"):
            parts.append(_text(block.get("text", "")))
        elif block.get("type") in ("image_url", "input_image"):
            image = block.get("image_url")
            parts.append(_image(image.get("url") if isinstance(image, dict) else image))
        elif block.get("type") == "image":  # Anthropic
            source = member(block, "source")
            if source.get("type") == "base64":
                parts.append(_image(f"data:{source.get('media_type')};base64,"
                                    f"{source.get('data', '')}"))
            else:
                parts.append(_image(source.get("url")))
        elif block.get("type") == "tool_use":  # Anthropic
            parts.append({"kind": "tool_call", "name": block.get("name"),
                          "id": block.get("id"), "text": _arguments(block.get("input"))})
        elif block.get("type") == "tool_result":
            parts.append({"kind": "tool_result", "id": block.get("tool_use_id"),
                          "text": _flatten(block.get("content"))})
        else:
            parts.append({"kind": "json", "text": _json(block)})
    return parts


def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", _json(b)) if isinstance(b, dict) else str(b)
                         for b in content)
    return _json(content)


def _tool_calls(calls: Any) -> list[dict]:
    parts = []
    for call in objects(calls):
        function = member(call, "function")
        parts.append({"kind": "tool_call", "name": function.get("name"),
                      "id": call.get("id"), "text": _arguments(function.get("arguments"))})
    return parts


def _chat_message(message: dict) -> dict:
    role = message.get("role") or "?"
    parts = _openai_parts(message.get("content"))
    if role == "tool":
        parts = [{"kind": "tool_result", "id": message.get("tool_call_id"),
                  "text": _flatten(message.get("content"))}]
    parts += _tool_calls(message.get("tool_calls"))
    if message.get("function_call"):
        parts += _tool_calls([{"function": message["function_call"]}])
    return {"role": role, "parts": parts}


def _request_messages(body: dict) -> list[dict]:
    messages: list[dict] = []
    system = body.get("system")  # Anthropic
    if system:
        messages.append({"role": "system", "parts": [_text(_flatten(system))]})
    if isinstance(body.get("instructions"), str):  # Responses API
        messages.append({"role": "system", "parts": [_text(body["instructions"])]})
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append(_chat_message(message))
    source = body.get("input")  # Responses API, embeddings
    if isinstance(source, str):
        messages.append({"role": "user", "parts": [_text(source)]})
    elif isinstance(source, list):
        for item in source:
            if isinstance(item, dict) and "role" in item:
                messages.append({"role": item["role"],
                                 "parts": _openai_parts(item.get("content"))})
            elif isinstance(item, dict):
                messages.append({"role": item.get("type", "input"),
                                 "parts": [{"kind": "json", "text": _json(item)}]})
            else:
                messages.append({"role": "user", "parts": [_text(item)]})
    return messages


def _response_messages(body: dict) -> list[dict]:
    # A logged answer is the provider's, maybe of the wrong shape (a choice that is a
    # string, a message that is no object): what is of no use is left out, as the
    # translations leave it (chunk_fields), so its record still opens.
    messages = []
    for choice in objects(body.get("choices")):  # OpenAI chat
        message = choice.get("message")
        if isinstance(message, dict):
            messages.append(_chat_message({"role": "assistant", **message}))
    if body.get("type") == "message" and isinstance(body.get("content"), list):  # Anthropic
        messages.append({"role": "assistant", "parts": _openai_parts(body["content"])})
    for item in objects(body.get("output")):  # Responses API
        if item.get("type") == "message":
            messages.append({"role": item.get("role", "assistant"),
                             "parts": _openai_parts(item.get("content"))})
        elif item.get("type") == "function_call":
            messages.append({"role": "assistant", "parts": [
                {"kind": "tool_call", "name": item.get("name"), "id": item.get("call_id"),
                 "text": _arguments(item.get("arguments"))}]})
    if isinstance(body.get("data"), list) and body.get("object") == "list":  # embeddings
        messages.append({"role": "assistant", "parts": [
            _text(f"{len(body['data'])} embedding(s)")]})
    return messages


def conversation(request: Any, response: Any) -> list[dict]:
    """The messages of a logged exchange, prompt first, the answer marked `answer`."""
    messages = _request_messages(request) if isinstance(request, dict) else []
    answer = _response_messages(response) if isinstance(response, dict) else []
    for message in answer:
        message["answer"] = True
    for message in messages + answer:
        for part in message["parts"]:
            text = part.get("text")
            if isinstance(text, str) and len(text) > MAX_PART_CHARS:
                part["text"] = (text[:MAX_PART_CHARS] + f"… [{len(text) - MAX_PART_CHARS:,}"
                                " more characters: download the record]")
    return messages + answer
