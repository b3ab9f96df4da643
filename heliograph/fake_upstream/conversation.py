"""The fake's answers, independent of any wire format.

Each wire-format module (OpenAI, Anthropic, Gemini, Responses) parses its request into an
`Ask` and renders the `Answer` planned by `answer()`, so every provider the fake speaks
behaves alike and a translation bug shows up as a difference between providers.

Determinism contract (tests rely on it):
  reply text         "Echo: <text of the last user turn>"; after tool results,
                     "Echo: <the tool results' texts, space-separated>"
  JSON mode          a JSON schema → an object of fake values (see `fake_object`);
                     plain JSON mode → {"echo": <what the text reply would echo>}
  tool calls         a tool is called when its name appears (as a word) in the last user
                     turn; else the first tool when that turn says "weather", the
                     ``tool-call`` behaviour is set or a tool is required. Several named
                     tools are called in parallel unless parallel calls are disabled;
                     ``tool-calls-<n>`` makes <n> calls in one reply, cycling the tools.
  stop sequences     the reply is cut before the first one found (finish "stop")
  max tokens         the reply is cut to that many words (finish "length")
  prompt tokens      per turn: word count of its texts and tool results + 3, plus
                     IMAGE_TOKENS per image
  completion tokens  word count of the reply (>= 1); for tool calls, the word count of
                     each call's arguments with punctuation as spaces (>= 1 each)
  usage shaping      cached-<n>, cache-write-<n>, reasoning-<n>, usage-<p>-<c>
  thinking           (Anthropic, `thinking` enabled) the message opens with a thinking
                     block "Thinking about: <text of the last user message>"
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from .behavior import Behavior

IMAGE_TOKENS = 85


class InvalidRequest(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param


@dataclass
class Turn:
    role: str                                   # "system" | "user" | "assistant" | "tool"
    texts: list[str] = field(default_factory=list)
    images: int = 0
    tool_results: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.texts)


@dataclass
class Tool:
    name: str
    parameters: dict


@dataclass
class Ask:
    model: str
    turns: list[Turn]
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str = "auto"                   # "auto" | "none" | "required"
    forced_tool: str | None = None              # a tool the caller named
    parallel_tools: bool = True
    json_schema: dict | None = None
    json_object: bool = False
    stop: list[str] = field(default_factory=list)
    max_tokens: int | None = None


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str                              # compact JSON


@dataclass
class Answer:
    text: str | None
    tool_calls: list[ToolCall]
    finish: str                                 # "stop" | "length" | "tool_calls" | "content_filter"
    stop_sequence: str | None
    prompt_tokens: int                          # all input, cache reads and writes included
    completion_tokens: int                      # all output, reasoning included
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    image_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# -- small shared helpers ------------------------------------------------------

def words(text: str) -> int:
    return len(text.split())


def new_id(prefix: str, n: int = 29) -> str:
    return prefix + secrets.token_urlsafe(n)[:n].replace("-", "x").replace("_", "y")


def split_words(text: str) -> list[str]:
    """One piece per word, whitespace kept: "Echo: hi there" -> ["Echo: ", "hi ", "there"]."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p] or [""]


def split_chars(text: str, size: int = 4) -> list[str]:
    size = min(size, max(1, len(text) // 2))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def fake_value(name: str, schema: Any) -> Any:
    schema = schema if isinstance(schema, dict) else {}
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [],
            "object": {}, "null": None}.get(kind, f"fake {name}")


def fake_object(schema: Any) -> dict:
    """The object a JSON schema asks for: its required (else all) properties, faked."""
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    names = schema.get("required") or list(props)
    return {n: fake_value(n, props.get(n)) for n in names}


def compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- the plan --------------------------------------------------------------------

def chosen_tools(ask: Ask, b: Behavior) -> list[Tool]:
    if not ask.tools or ask.tool_choice == "none":
        return []
    if ask.forced_tool is not None:
        return [next((t for t in ask.tools if t.name == ask.forced_tool), ask.tools[0])]
    if b.tool_calls:
        many = [ask.tools[i % len(ask.tools)] for i in range(b.tool_calls)]
        return many if ask.parallel_tools else many[:1]
    last = ask.turns[-1] if ask.turns else Turn("user")
    text = last.text if last.role == "user" else ""
    named = [t for t in ask.tools
             if re.search(rf"(?<!\w){re.escape(t.name)}(?!\w)", text)]
    if not named and (re.search(r"\bweather\b", text, re.IGNORECASE) or b.tool_call
                      or ask.tool_choice == "required"):
        named = [ask.tools[0]]
    return named if ask.parallel_tools else named[:1]


def echoed(ask: Ask) -> str:
    """What a text reply echoes: trailing tool results, else the last user turn."""
    results: list[str] = []
    for turn in reversed(ask.turns):
        if turn.role != "tool":
            break
        results[:0] = turn.tool_results
    if results:
        return " ".join(results)
    for turn in reversed(ask.turns):
        if turn.role == "user":
            return turn.text
    return ""


def prompt_tokens(turns: list[Turn]) -> tuple[int, int]:
    """(all prompt tokens, the image share of them)."""
    images = sum(t.images for t in turns) * IMAGE_TOKENS
    text = sum(words(t.text) + words(" ".join(t.tool_results)) + 3 for t in turns)
    return text + images, images


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    found = [(text.find(s), s) for s in stops if s and s in text]
    if not found:
        return text, None
    index, stop = min(found)
    return text[:index], stop


def answer(ask: Ask, b: Behavior, id_prefix: str = "call_", id_length: int = 24) -> Answer:
    calls: list[ToolCall] = []
    stop_sequence = None
    if b.content_filter:
        text, finish, completion = None, "content_filter", 1
    elif tools := chosen_tools(ask, b):
        calls = [ToolCall(new_id(id_prefix, id_length), t.name,
                          compact_json(fake_object(t.parameters))) for t in tools]
        text, finish = None, "tool_calls"
        completion = sum(max(1, words(re.sub(r"[^\w]+", " ", c.arguments))) for c in calls)
    else:
        if ask.json_schema is not None:
            text = compact_json(fake_object(ask.json_schema))
        elif ask.json_object:
            text = compact_json({"echo": echoed(ask)})
        else:
            text = "Echo: " + echoed(ask)
        finish = "stop"
        text, stop_sequence = _cut_at_stop(text, ask.stop)
        if ask.max_tokens is not None and words(text) > ask.max_tokens:
            text = "".join(split_words(text)[:ask.max_tokens]).rstrip()
            finish = "length"
        completion = max(1, words(text))
    prompt, image_tokens = prompt_tokens(ask.turns)
    cached = b.cached_tokens or 0
    written = b.cache_write_tokens or 0
    reasoning = b.reasoning_tokens or 0
    if b.usage is not None:
        prompt, completion = b.usage
    else:
        prompt = max(prompt, cached + written)
        completion += reasoning
    return Answer(text, calls, finish, stop_sequence, prompt, completion, cached, written,
                  reasoning, image_tokens)
