"""OpenAI chat objects as the translating formats build them (completions, stream chunks,
error bodies), and the readers of OpenAI requests they share (data URLs, tool calls).
One place, so every translation answers in the same shape."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson

from heliograph.body_fields import object_field
from heliograph.errors import BadRequest

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)",
                       re.DOTALL)


def completion(id_: str, model: str, choices: list[dict], usage_: dict | None,
               created: int | None = None) -> dict[str, Any]:
    # system_fingerprint, logprobs and refusal are null rather than absent, as OpenAI
    # sends them: strict clients check the keys.
    return {"id": id_, "object": "chat.completion", "created": created or int(time.time()),
            "model": model, "choices": choices, "usage": usage_, "system_fingerprint": None}


def choice(index: int, content: str | None, tool_calls: list[dict], finish: str | None,
           reasoning: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def tool_call(id_: Any, name: Any, arguments: str) -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


class ChunkMaker:
    """Chunks of one stream share id, created and model."""

    def __init__(self, id_: str, model: str):
        self.id, self.model, self.created = id_, model, int(time.time())

    def chunk(self, delta: dict | None, finish: str | None = None, index: int = 0,
              usage_: dict | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk",
                               "created": self.created, "model": self.model,
                               "system_fingerprint": None,
                               "choices": [] if delta is None else
                               [{"index": index, "delta": delta, "logprobs": None,
                                 "finish_reason": finish}]}
        if usage_ is not None:
            out["usage"] = usage_
        return out


def error_body(message: str, type_: str, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None,
                                   "code": code}})


def provider_error_body(status: int, body: bytes, provider: str) -> bytes:
    """An OpenAI error body for a provider's error answer that says nothing readable."""
    text = body.decode("utf-8", "replace").strip()[:300]
    return error_body(f"provider {provider!r} answered {status}"
                      + (f": {text}" if text else ""), "api_error")


def json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data URL, else None."""
    match = _DATA_URL.fullmatch(url)
    return (match["mime"], match["data"]) if match else None


def bad_request(message: str, param: str | None = None) -> BadRequest:
    """A request a translating adapter cannot send, naming the offending field."""
    return BadRequest(message + (f" ({param})" if param else ""), code="invalid_request")


def each_message(messages: Any) -> Iterator[tuple[int, str, dict]]:
    """(index, role, message) of each message of a chat request, checked, for the
    translations to formats that know fewer roles; developer counts as system."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request("each message must be an object", f"messages[{i}]")
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise bad_request(f"message role {role!r} is not supported (system, developer, "
                              "user, assistant, tool)", f"messages[{i}].role")
        yield i, "system" if role == "developer" else role, m


def append_turn(turns: list[dict], role: str, items: list[dict], key: str) -> None:
    """Add `items` to the conversation as `role`'s, in the last turn when it is `role`'s
    already: Anthropic and Gemini want roles to alternate (parallel tool results together,
    in one turn)."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def named_function(tool: Any, where: str, target: str, typed: bool = True) -> dict:
    """The `function` of one tool of a chat request, which needs a name to be sent to
    `target`; `typed`: its type must say "function" too."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) \
            or not function["name"] or (typed and tool.get("type") != "function"):
        raise bad_request(f"only function tools with a name can be sent to {target}", where)
    return function


def tool_call_parts(call: Any, where: str, need_id: bool) -> tuple[str, dict]:
    """The function name and parsed arguments of one OpenAI assistant tool call."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or (
            need_id and not call.get("id")):
        raise bad_request("each tool call needs " + ("an id and " if need_id else "")
                          + "a function name", where)
    try:
        arguments = orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise bad_request("tool call arguments must be a JSON object",
                          f"{where}.function.arguments")
    return function["name"], arguments


def text_of(content: Any) -> str:
    """Text of an OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def include_usage(body: dict) -> bool:
    """Whether an OpenAI chat request asks for the stream's usage chunk."""
    return bool(object_field(body, "stream_options").get("include_usage"))
