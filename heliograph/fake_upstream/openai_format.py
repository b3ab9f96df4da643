"""OpenAI wire format: deterministic bodies and stream chunks (no I/O here).

Replies follow the determinism contract in ``conversation``; here only the OpenAI shapes:
  cached-<n>         cached_tokens = n, prompt_tokens raised to n if smaller
  reasoning-<n>      reasoning_tokens = n, added to completion_tokens
  usage-<p>-<c>      prompt_tokens = p, completion_tokens = c (exactly)
  embeddings         unit vectors derived from sha256 of each input, float32-exact
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import string
import struct
import time
from collections.abc import Iterable
from typing import Any

import orjson

from .behavior import Behavior
from .conversation import (
    Answer,
    Ask,
    InvalidRequest,
    Tool,
    Turn,
    answer,
    new_id,
    split_chars,
    split_words,
    words,
)

SYSTEM_FINGERPRINT = "fp_fake0001"
_OBFUSCATION_CHARS = string.ascii_letters + string.digits
EMBEDDING_DIM = 8
MODELS = [
    ("gpt-4o", "system"),
    ("gpt-4o-mini", "system"),
    ("text-embedding-3-small", "system"),
]
MODELS_CREATED = 1715367049


# -- errors ------------------------------------------------------------------

_STATUS_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request (fake)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests per min (RPM): Limit 10000, Used 10000, "
          "Requested 1. Please try again in 1s."),
}


def error_body(message: str, type_: str, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_for_status(status: int) -> dict[str, Any]:
    if status in _STATUS_ERRORS:
        type_, code, message = _STATUS_ERRORS[status]
    elif status >= 500:
        type_, code, message = ("server_error", None,
                                "The server had an error while processing your request. "
                                "Sorry about that!")
    else:
        type_, code, message = "invalid_request_error", None, f"Request failed ({status})."
    return error_body(message, type_, code)


# -- requests → the wire-neutral Ask ------------------------------------------------

def text_of(content: Any) -> str:
    """Text of a message ``content``: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_images(content: Any, param: str) -> int:
    """Image parts of a content list; a URL that is neither http(s) nor a data URL is a 400."""
    if not isinstance(content, list):
        return 0
    count = 0
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not (
                    url.startswith(("http://", "https://"))
                    or re.match(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]+$", url)):
                raise InvalidRequest("Invalid image URL: expected an http(s) URL or a "
                                     "base64 data URL.", param)
            count += 1
    return count


def validate_chat(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("'messages' must be a non-empty array of objects.", "messages")
    if body.get("stream_options") and not body.get("stream"):
        raise InvalidRequest("The 'stream_options' parameter is only allowed when "
                             "'stream' is enabled.", "stream_options")


def _check_tool_pairing(messages: list[dict]) -> None:
    """OpenAI's own rule: tool messages answer the tool calls just before them, all of them."""
    pending: set[str] = set()
    for i, m in enumerate(messages):
        if m.get("role") == "tool":
            if m.get("tool_call_id") not in pending:
                raise InvalidRequest("Invalid parameter: messages with role 'tool' must be a "
                                     "response to a preceeding message with 'tool_calls'.",
                                     f"messages.[{i}].role")
            pending.discard(m["tool_call_id"])
            continue
        if pending:
            raise InvalidRequest("An assistant message with 'tool_calls' must be followed by "
                                 "tool messages responding to each 'tool_call_id'. The "
                                 f"following tool_call_ids did not have response messages: "
                                 f"{', '.join(sorted(pending))}", f"messages.[{i}].role")
        if m.get("role") == "assistant":
            pending = _tool_call_ids(m.get("tool_calls") or (), i)


def _tool_call_ids(calls: Iterable[Any], i: int) -> set[str]:
    """An assistant message's tool call ids, which OpenAI requires to be strings (a
    missing one used to crash the error message listing the unanswered ids)."""
    ids: set[str] = set()
    for k, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        where = f"messages[{i}].tool_calls[{k}].id"
        if call.get("id") is None:
            raise InvalidRequest(f"Missing required parameter: '{where}'.", where)
        if not isinstance(call["id"], str):
            raise InvalidRequest(f"Invalid type for '{where}': expected a string.", where)
        ids.add(call["id"])
    return ids


def ask_from_chat(body: dict) -> Ask:
    messages = body["messages"]
    _check_tool_pairing(messages)
    turns = []
    for i, m in enumerate(messages):
        content = m.get("content")
        if m.get("role") == "tool":
            turns.append(Turn("tool", tool_results=[text_of(content)]))
        else:
            role = "system" if m.get("role") == "developer" else str(m.get("role"))
            turns.append(Turn(role, [text_of(content)],
                              images=count_images(content, f"messages.[{i}].content")))
    tools = [Tool(t["function"]["name"], t["function"].get("parameters") or {})
             for t in body.get("tools") or []
             if isinstance(t, dict) and isinstance(t.get("function"), dict)
             and t["function"].get("name")]
    ask = Ask(body["model"], turns, tools,
              parallel_tools=body.get("parallel_tool_calls") is not False,
              max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        ask.forced_tool = (choice.get("function") or {}).get("name")
    elif choice in ("none", "required"):
        ask.tool_choice = choice
    stop = body.get("stop")
    ask.stop = [stop] if isinstance(stop, str) else [s for s in stop or () if isinstance(s, str)]
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        ask.json_schema = (fmt.get("json_schema") or {}).get("schema") or {}
    elif fmt.get("type") == "json_object":
        if not any("json" in text_of(m.get("content")).lower() for m in messages):
            raise InvalidRequest("'messages' must contain the word 'json' in some form, to use "
                                 "'response_format' of type 'json_object'.", "messages")
        ask.json_object = True
    return ask


def usage(a: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens,
        "total_tokens": a.total_tokens,
        "prompt_tokens_details": {"cached_tokens": a.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": a.reasoning_tokens, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


# -- chat completions ----------------------------------------------------------

class ChatReply:
    """Everything about one chat answer, computed up front (so headers know usage)."""

    def __init__(self, body: dict, b: Behavior):
        self.model = body["model"]
        self.id = new_id("chatcmpl-")
        self.created = int(time.time())
        options = body.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage"))
        self.obfuscation = b.obfuscation and options.get("include_obfuscation") is not False
        self.answer = answer(ask_from_chat(body), b)
        self.content = self.answer.text
        self.finish_reason = self.answer.finish
        self.usage = usage(self.answer)

    @property
    def total_tokens(self) -> int:
        return self.usage["total_tokens"]

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content,
                               "refusal": None, "annotations": []}
        if self.answer.tool_calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in self.answer.tool_calls]
        return msg

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": self.message(), "logprobs": None,
                         "finish_reason": self.finish_reason}],
            "usage": self.usage, "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def _chunk(self, delta: dict | None, finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [] if delta is None else
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = self.usage if delta is None else None
        if self.obfuscation:   # OpenAI's: random letters and digits, last, after the usage
            chunk["obfuscation"] = "".join(random.choices(_OBFUSCATION_CHARS,
                                                          k=random.randint(1, 16)))
        return chunk

    def chunks(self) -> list[dict[str, Any]]:
        """role chunk, content/argument pieces, finish chunk, [usage chunk]. Each tool
        call opens with its id and name, then its arguments arrive in pieces."""
        calls = self.answer.tool_calls
        if not calls:
            out = [self._chunk({"role": "assistant", "content": "", "refusal": None})]
            if self.content is not None:
                out += [self._chunk({"content": piece}) for piece in split_words(self.content)]
        else:
            out = []
            for index, call in enumerate(calls):
                opening = {"index": index, "id": call.id, "type": "function",
                           "function": {"name": call.name, "arguments": ""}}
                delta: dict[str, Any] = {"tool_calls": [opening]}
                if index == 0:
                    delta = {"role": "assistant", "content": None, "refusal": None, **delta}
                out.append(self._chunk(delta))
                out += [self._chunk({"tool_calls": [{"index": index,
                                                     "function": {"arguments": p}}]})
                        for p in split_chars(call.arguments)]
        out.append(self._chunk({}, self.finish_reason))
        if self.include_usage:
            out.append(self._chunk(None))
        return out


# -- embeddings ----------------------------------------------------------------

def _inputs(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, (str, list)) for x in raw):
        return raw
    raise InvalidRequest("'input' must be a string, an array of strings or of token arrays.",
                         "input")


def embedding_vector(item: Any, dim: int) -> list[float]:
    seed = item if isinstance(item, str) else orjson.dumps(item).decode()
    raw = [int.from_bytes(hashlib.sha256(f"{seed}\0{i}".encode()).digest()[:4], "little")
           / 2**31 - 1.0 for i in range(dim)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    # round-trip through float32 so the base64 form decodes to exactly these numbers
    return list(struct.unpack(f"<{dim}f", struct.pack(f"<{dim}f", *(v / norm for v in raw))))


def embeddings(body: Any, b: Behavior) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", "model")
    items = _inputs(body.get("input"))
    dim = body.get("dimensions", EMBEDDING_DIM)
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 4096:
        raise InvalidRequest("'dimensions' must be an integer between 1 and 4096.",
                             "dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.",
                             "encoding_format")
    data = []
    for i, item in enumerate(items):
        vec: Any = embedding_vector(item, dim)
        if fmt == "base64":
            vec = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vec})
    tokens = sum(max(1, words(x) if isinstance(x, str) else len(x)) for x in items)
    if b.usage is not None:
        tokens = b.usage[0]
    return {"object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# -- models ----------------------------------------------------------------------

def model_object(model_id: str, owned_by: str = "system") -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": owned_by}


def models() -> dict[str, Any]:
    return {"object": "list", "data": [model_object(m, o) for m, o in MODELS]}
