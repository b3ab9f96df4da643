"""Every field of an OpenAI chat request, and what the translations to Claude (Anthropic)
and Gemini do with it: TRANSLATED (carried over), REFUSED (a 400 naming the field when it
asks for something the target cannot do, e.g. `logprobs: true`) or DROPPED (a hint or a
piece of OpenAI account state the target has no place for; the answer is the same
without it). The table is the documentation too: formats/README.md shows it.

`check(body, target)` validates the fields the translations read, with the message
OpenAI itself gives such a request (`stream: "foo"` and `max_tokens: 0` are 400s, not
silently false or a default), then refuses what the target cannot honour. A field not in
the table is refused too: an unknown field is a typo or a feature the gateway cannot
carry, and OpenAI answers it with a 400 as well.
"""

from __future__ import annotations

from typing import Any

from heliograph.errors import BadRequest

TRANSLATED, REFUSED, DROPPED = "translated", "refused", "dropped"

# field → (Claude, Gemini). REFUSED applies only when the field asks for something
# (not null, false, 0, 1 for `n`, "text" for modalities...; see _asks).
FIELDS: dict[str, tuple[str, str]] = {
    "model": (TRANSLATED, TRANSLATED),
    "messages": (TRANSLATED, TRANSLATED),
    "stream": (TRANSLATED, TRANSLATED),
    "stream_options": (TRANSLATED, TRANSLATED),
    "max_tokens": (TRANSLATED, TRANSLATED),
    "max_completion_tokens": (TRANSLATED, TRANSLATED),
    "temperature": (TRANSLATED, TRANSLATED),
    "top_p": (TRANSLATED, TRANSLATED),
    "stop": (TRANSLATED, TRANSLATED),
    "tools": (TRANSLATED, TRANSLATED),
    "tool_choice": (TRANSLATED, TRANSLATED),
    "parallel_tool_calls": (TRANSLATED, TRANSLATED),
    "response_format": (TRANSLATED, TRANSLATED),
    "reasoning_effort": (TRANSLATED, TRANSLATED),
    # Not OpenAI's, but what OpenAI-format clients of Claude and Gemini send (LiteLLM's
    # convention): Anthropic's own thinking object, and top_k.
    "thinking": (TRANSLATED, TRANSLATED),
    "top_k": (TRANSLATED, TRANSLATED),
    "user": (TRANSLATED, DROPPED),
    "n": (REFUSED, TRANSLATED),
    "seed": (DROPPED, TRANSLATED),
    "presence_penalty": (DROPPED, TRANSLATED),
    "frequency_penalty": (DROPPED, TRANSLATED),
    "logit_bias": (DROPPED, DROPPED),
    "logprobs": (REFUSED, REFUSED),
    "top_logprobs": (REFUSED, REFUSED),
    "modalities": (REFUSED, REFUSED),
    "audio": (REFUSED, REFUSED),
    "prediction": (REFUSED, REFUSED),
    "web_search_options": (REFUSED, REFUSED),
    "functions": (REFUSED, REFUSED),
    "function_call": (REFUSED, REFUSED),
    "store": (DROPPED, DROPPED),
    "metadata": (DROPPED, DROPPED),
    "service_tier": (DROPPED, DROPPED),
    "verbosity": (DROPPED, DROPPED),
    "prompt_cache_key": (DROPPED, DROPPED),
    "prompt_cache_retention": (DROPPED, DROPPED),
    "safety_identifier": (DROPPED, DROPPED),
}
TARGETS = {"Anthropic": 0, "Gemini": 1}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
# Why a refused field cannot be carried, for the 400's message.
_WHY = {
    "n": "it answers with one choice per request: n must be 1",
    "logprobs": "it returns no token log probabilities",
    "top_logprobs": "it returns no token log probabilities",
    "modalities": "audio output is OpenAI's",
    "audio": "audio output is OpenAI's",
    "prediction": "predicted outputs are OpenAI's",
    "web_search_options": "OpenAI's web search runs only at OpenAI",
    "functions": "use tools (the deprecated functions field is not translated)",
    "function_call": "use tool_choice (the deprecated function_call field is not translated)",
}


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(f"{message} ({param})", code="invalid_request")


def number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{name} must be a number", name)
    if not low <= value <= high:
        raise _bad(f"{name} must be from {low:g} to {high:g}, got {value}", name)


def whole(body: dict, name: str, low: int, high: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name} must be an integer", name)
    if value < low or (high is not None and value > high):
        limit = f"at least {low}" if high is None else f"from {low} to {high}"
        raise _bad(f"{name} must be {limit}, got {value}", name)


def flag(body: dict, name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"{name} must be a boolean, got {type(value).__name__}", name)


def validate(body: dict) -> None:
    """The fields the translations read, checked as OpenAI checks them."""
    for name in ("stream", "parallel_tool_calls", "logprobs", "store"):
        flag(body, name)
    whole(body, "max_tokens", 1)
    whole(body, "max_completion_tokens", 1)
    whole(body, "n", 1, 128)
    whole(body, "top_logprobs", 0, 20)
    whole(body, "seed", -(2 ** 63), 2 ** 63 - 1)
    whole(body, "top_k", 1)
    thinking = body.get("thinking")
    if thinking is not None and (not isinstance(thinking, dict) or thinking.get("type")
                                 not in ("enabled", "disabled", "adaptive")):
        raise _bad("thinking must be an object whose type is enabled or disabled",
                   "thinking")
    number(body, "temperature", 0, 2)
    number(body, "top_p", 0, 1)
    number(body, "presence_penalty", -2, 2)
    number(body, "frequency_penalty", -2, 2)
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise _bad(f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}, "
                   f"got {effort!r}", "reasoning_effort")
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise _bad("stream_options is only allowed when stream is true", "stream_options")
    response_format = body.get("response_format")
    if response_format is not None and (
            not isinstance(response_format, dict)
            or response_format.get("type") not in ("text", "json_object", "json_schema")):
        raise _bad("response_format must be an object whose type is text, json_object or "
                   "json_schema", "response_format")
    if isinstance(body.get("user"), (dict, list, int, float)):
        raise _bad("user must be a string", "user")


def _asks(name: str, value: Any) -> bool:
    """Whether a field's value asks for something (its default values do not)."""
    if value is None or value is False or value == 0 and name != "n":
        return False
    if name == "n":
        return value != 1
    if name == "modalities":
        return value != ["text"]
    if name in ("logit_bias", "metadata"):
        return bool(value)
    return True


def check(body: dict, target: str) -> None:
    """Validate, then refuse the fields `target` ("Anthropic" or "Gemini") cannot honour
    and the fields nobody knows."""
    validate(body)
    column = TARGETS[target]
    for name, value in body.items():
        handling = FIELDS.get(name)
        if handling is None:
            raise _bad(f"unrecognized request argument supplied: {name}", name)
        if handling[column] == REFUSED and _asks(name, value):
            raise BadRequest(f"{name} cannot be sent to {target}: "
                             f"{_WHY.get(name, 'it has no equivalent')} ({name})",
                             code="unsupported_parameter")


def markdown_table() -> str:
    """The table as formats/README.md shows it (a test keeps the two the same)."""
    rows = ["| field | Claude | Gemini |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | {claude} | {gemini} |"
             for name, (claude, gemini) in FIELDS.items()]
    return "\n".join(rows)
