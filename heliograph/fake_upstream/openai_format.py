"""OpenAI wire format: deterministic bodies and stream chunks (no I/O here).

Determinism contract (tests rely on it):
  reply content      "Echo: <text of the last user message>"
  prompt_tokens      sum of word counts of all message texts + 3 per message
  completion_tokens  word count of the reply (>= 1); for a tool call, the word
                     count of its arguments JSON with punctuation as spaces (>= 1)
  cached-<n>         cached_tokens = n, prompt_tokens raised to n if smaller
  reasoning-<n>      reasoning_tokens = n, added to completion_tokens
  usage-<p>-<c>      prompt_tokens = p, completion_tokens = c (exactly)
  embeddings         unit vectors derived from sha256 of each input, float32-exact
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import struct
import time
from typing import Any

import orjson

from .behavior import Behavior

SYSTEM_FINGERPRINT = "fp_fake0001"
EMBEDDING_DIM = 8
MODELS = [
    ("gpt-4o", "system"),
    ("gpt-4o-mini", "system"),
    ("text-embedding-3-small", "system"),
]
MODELS_CREATED = 1715367049


class InvalidRequest(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param


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


# -- text and token counting -------------------------------------------------

def text_of(content: Any) -> str:
    """Text of a message ``content``: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def words(text: str) -> int:
    return len(text.split())


def prompt_tokens(messages: list[dict]) -> int:
    return sum(words(text_of(m.get("content"))) + 3 for m in messages)


def last_user_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def usage(prompt: int, completion: int, b: Behavior) -> dict[str, Any]:
    cached = b.cached_tokens or 0
    reasoning = b.reasoning_tokens or 0
    if b.usage is not None:
        prompt, completion = b.usage
    else:
        prompt = max(prompt, cached)
        completion += reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


# -- chat completions ----------------------------------------------------------

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


def chosen_tool(body: dict, b: Behavior) -> dict | None:
    """The tool (``{"name", "parameters"}``) to call, or None for a text reply."""
    tools = [t["function"] for t in body.get("tools") or []
             if isinstance(t, dict) and isinstance(t.get("function"), dict)
             and t["function"].get("name")]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t["name"] == name), tools[0])
    last = body["messages"][-1]
    asks = last.get("role") == "user" and re.search(r"\bweather\b", text_of(last.get("content")),
                                                    re.IGNORECASE)
    return tools[0] if asks or b.tool_call or choice == "required" else None


def _fake_value(name: str, schema: Any) -> Any:
    schema = schema if isinstance(schema, dict) else {}
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [],
            "object": {}, "null": None}.get(kind, f"fake {name}")


def tool_arguments(tool: dict) -> str:
    params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    names = params.get("required") or list(props)
    return orjson.dumps({n: _fake_value(n, props.get(n)) for n in names}).decode()


def new_id(prefix: str, n: int = 29) -> str:
    return prefix + secrets.token_urlsafe(n)[:n].replace("-", "x").replace("_", "y")


class ChatReply:
    """Everything about one chat answer, computed up front (so headers know usage)."""

    def __init__(self, body: dict, b: Behavior):
        self.model = body["model"]
        self.id = new_id("chatcmpl-")
        self.created = int(time.time())
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        tool = chosen_tool(body, b)
        if tool is not None:
            self.content = None
            self.tool_name = tool["name"]
            self.tool_id = new_id("call_", 24)
            self.arguments = tool_arguments(tool)
            self.finish_reason = "tool_calls"
            completion = max(1, words(re.sub(r"[^\w]+", " ", self.arguments)))
        else:
            self.content = "Echo: " + last_user_text(body["messages"])
            self.tool_name = None
            self.finish_reason = "stop"
            completion = max(1, words(self.content))
        self.usage = usage(prompt_tokens(body["messages"]), completion, b)

    @property
    def total_tokens(self) -> int:
        return self.usage["total_tokens"]

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content,
                               "refusal": None, "annotations": []}
        if self.tool_name is not None:
            msg["tool_calls"] = [{"id": self.tool_id, "type": "function",
                                  "function": {"name": self.tool_name,
                                               "arguments": self.arguments}}]
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
        return chunk

    def chunks(self) -> list[dict[str, Any]]:
        """role chunk, content/argument pieces, finish chunk, [usage chunk]."""
        if self.tool_name is None:
            out = [self._chunk({"role": "assistant", "content": "", "refusal": None})]
            out += [self._chunk({"content": piece}) for piece in split_words(self.content)]
        else:
            out = [self._chunk({"role": "assistant", "content": None, "refusal": None,
                                "tool_calls": [{"index": 0, "id": self.tool_id,
                                                "type": "function",
                                                "function": {"name": self.tool_name,
                                                             "arguments": ""}}]})]
            out += [self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
                    for p in split_chars(self.arguments)]
        out.append(self._chunk({}, self.finish_reason))
        if self.include_usage:
            out.append(self._chunk(None))
        return out


def split_words(text: str) -> list[str]:
    """One piece per word, whitespace kept: "Echo: hi there" -> ["Echo: ", "hi ", "there"]."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p] or [""]


def split_chars(text: str, size: int = 4) -> list[str]:
    size = min(size, max(1, len(text) // 2))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


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
