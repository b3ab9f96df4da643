"""OpenAI chat objects as the translating adapters build them: completions, stream
chunks, usage and error bodies. One place, so every adapter answers in the same shape."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from heliograph.body_fields import object_field
from heliograph.errors import BadRequest
from heliograph.providers.http import UpstreamResponse

JSON_HEADERS = {"content-type": "application/json"}
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)",
                       re.DOTALL)


def usage(prompt: int, completion: int, cached: int = 0, cache_write: int = 0,
          reasoning: int = 0) -> dict[str, Any]:
    """OpenAI usage: prompt_tokens counts every input token (cache reads and writes
    included), completion_tokens every output token (reasoning included)."""
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached,
                                      "cache_write_tokens": cache_write},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


def completion(id_: str, model: str, choices: list[dict], usage_: dict | None,
               created: int | None = None) -> dict[str, Any]:
    return {"id": id_, "object": "chat.completion", "created": created or int(time.time()),
            "model": model, "choices": choices, "usage": usage_}


def choice(index: int, content: str | None, tool_calls: list[dict], finish: str | None,
           reasoning: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "finish_reason": finish}


def tool_call(id_: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


class ChunkMaker:
    """Chunks of one stream share id, created and model."""

    def __init__(self, id_: str, model: str):
        self.id, self.model, self.created = id_, model, int(time.time())

    def chunk(self, delta: dict | None, finish: str | None = None, index: int = 0,
              usage_: dict | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk",
                               "created": self.created, "model": self.model,
                               "choices": [] if delta is None else
                               [{"index": index, "delta": delta, "finish_reason": finish}]}
        if usage_ is not None:
            out["usage"] = usage_
        return out


def error_body(message: str, type_: str, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None,
                                   "code": code}})


def error_response(status: int, headers: dict[str, str], message: str, type_: str,
                   code: str | None = None) -> UpstreamResponse:
    return UpstreamResponse(status, {**headers, **JSON_HEADERS},
                            error_body(message, type_, code))


def json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data URL, else None."""
    match = _DATA_URL.fullmatch(url)
    return (match["mime"], match["data"]) if match else None


def listed(resp: UpstreamResponse, key: str) -> list[dict] | None:
    """The entries under `key` of a provider's successful listing; None when the answer
    is an error or not a listing (then it is passed on as it came)."""
    doc = json_or_none(resp.body) if resp.status == 200 else None
    entries = doc.get(key) if isinstance(doc, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else None


def model_list(models: list[tuple[str, int]], owned_by: str) -> UpstreamResponse:
    """GET /v1/models' answer from (model id, created epoch seconds) pairs."""
    data = [{"id": model, "object": "model", "created": created, "owned_by": owned_by}
            for model, created in models]
    return UpstreamResponse(200, dict(JSON_HEADERS),
                            orjson.dumps({"object": "list", "data": data}))


def bad_request(message: str, param: str | None = None) -> BadRequest:
    """A request a translating adapter cannot send, naming the offending field."""
    return BadRequest(message + (f" ({param})" if param else ""), code="invalid_request")


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
