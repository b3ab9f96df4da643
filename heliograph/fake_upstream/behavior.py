"""Which misbehaviour a request asks for.

A request chooses behaviours in two equivalent ways:

* the ``x-fake-behavior`` header, comma-separated tokens:
  ``x-fake-behavior: status-429, delay-200``
* its model name, each token prefixed by ``fake-``:
  ``gpt-4o-mini-fake-status-429`` or ``gpt-4o-fake-delay-200-fake-cached-5``

Tokens (``<n>``, ``<ms>``, ``<p>``, ``<c>`` are non-negative integers):

  status-<code>      answer <code> (3 digits) with a wire-format error body
  redirect-<code>    answer <code> (3xx) with Location: /redirected<same path> on this
                     server (recorded like any request, so a test sees if it was followed)
  delay-<ms>         sleep before answering (streaming: before headers/first chunk)
  stall-<ms>         stall mid-response (stream: after the first chunk)
  chunk-delay-<ms>   sleep between stream chunks
  one-write          the whole stream in one write (a fast provider's events arrive together)
  obfuscation        OpenAI chat stream chunks end with a random "obfuscation" string, as
                     OpenAI's have by default since 2025 (unless stream_options says
                     include_obfuscation: false)
  malformed          200 whose JSON body (or one SSE event) is not JSON
  wrong-shape        JSON of the wrong shape: a chat answer's message is a string, its
                     usage no object and its model a list; an Anthropic message and a
                     Gemini response keep their answer but gain members of the wrong types
                     around it (blocks, parts and candidates that are no objects, a text
                     that is a number, a list stop reason, a count that is a list…);
                     Gemini embeddings hold a string and a non-object; with status-<code>,
                     Anthropic's error type is a list and Gemini's details a number; a
                     stream slips in an event of the wrong shape (a delta that is a
                     string, content a number, a tool call that is no object, an index
                     that is a list) after the first (typed streams: after the first
                     content block's start, and a tool_use block of no usable name;
                     Gemini's, Responses' and legacy completions' their own)
  foreign-object     a 200 whose JSON body is an object of another kind (Anthropic
                     messages: an error object, as a proxy in between might send)
  truncated          cut the connection mid-body (stream: after two chunks, no [DONE])
  reset              drop the connection without any response
  fail-then-ok-<n>   first <n> requests per ``x-fake-counter-key`` get 429, then 200
  retry-after-soon   error answers say ``retry-after: soon`` (not a number or a date)
  cached-<n>         usage reports <n> cached prompt tokens (cache reads)
  cache-write-<n>    usage reports <n> prompt tokens written to the cache (Anthropic)
  reasoning-<n>      usage reports <n> reasoning tokens
  usage-<p>-<c>      force prompt tokens = <p>, completion tokens = <c>
  tool-call          answer with a tool call (needs ``tools`` in the request)
  tool-calls-<n>     answer with <n> tool calls in one reply, cycling through the tools
                     (one when parallel calls are disabled)
  content-filter     the answer is stopped by the provider's safety filter
  prompt-blocked     the prompt itself is blocked (Gemini ``promptFeedback``)

The model name is read first, then the header, so the header wins on conflicts.
Unknown header tokens are an error (typos should not pass silently); text in a
model name that is not a ``fake-`` token is simply part of the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = "x-fake-behavior"
COUNTER_KEY_HEADER = "x-fake-counter-key"

_TOKEN = (
    r"status-(?P<status>\d{3})"
    r"|redirect-(?P<redirect>3\d\d)"
    r"|delay-(?P<delay>\d+)"
    r"|stall-(?P<stall>\d+)"
    r"|chunk-delay-(?P<chunk_delay>\d+)"
    r"|fail-then-ok-(?P<fail_then_ok>\d+)"
    r"|cached-(?P<cached>\d+)"
    r"|cache-write-(?P<cache_write>\d+)"
    r"|reasoning-(?P<reasoning>\d+)"
    r"|usage-(?P<usage_p>\d+)-(?P<usage_c>\d+)"
    r"|tool-calls-(?P<tool_calls>\d+)"
    r"|(?P<flag>malformed|truncated|reset|tool-call|content-filter|prompt-blocked"
    r"|retry-after-soon|one-write|obfuscation|wrong-shape|foreign-object)"
)
_TOKEN_RE = re.compile(f"(?:{_TOKEN})")
_MODEL_RE = re.compile(f"(?:^|(?<=[^a-z0-9]))fake-(?:{_TOKEN})(?=$|[^a-z0-9])")


class BehaviorError(ValueError):
    """An ``x-fake-behavior`` header token that is not in the grammar."""


@dataclass
class Behavior:
    status: int | None = None
    redirect: int | None = None
    delay_ms: int = 0
    stall_ms: int = 0
    chunk_delay_ms: int | None = None
    malformed: bool = False
    truncated: bool = False
    reset: bool = False
    fail_then_ok: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage: tuple[int, int] | None = None
    tool_call: bool = False
    tool_calls: int = 0
    content_filter: bool = False
    prompt_blocked: bool = False
    retry_after_soon: bool = False
    one_write: bool = False
    obfuscation: bool = False
    wrong_shape: bool = False
    foreign_object: bool = False

    def apply(self, m: re.Match) -> None:
        g = m.groupdict()
        if g["status"] is not None:
            self.status = int(g["status"])
        elif g["redirect"] is not None:
            self.redirect = int(g["redirect"])
        elif g["delay"] is not None:
            self.delay_ms = int(g["delay"])
        elif g["stall"] is not None:
            self.stall_ms = int(g["stall"])
        elif g["chunk_delay"] is not None:
            self.chunk_delay_ms = int(g["chunk_delay"])
        elif g["fail_then_ok"] is not None:
            self.fail_then_ok = int(g["fail_then_ok"])
        elif g["cached"] is not None:
            self.cached_tokens = int(g["cached"])
        elif g["cache_write"] is not None:
            self.cache_write_tokens = int(g["cache_write"])
        elif g["reasoning"] is not None:
            self.reasoning_tokens = int(g["reasoning"])
        elif g["tool_calls"] is not None:
            self.tool_calls = int(g["tool_calls"])
        elif g["usage_p"] is not None:
            self.usage = (int(g["usage_p"]), int(g["usage_c"]))
        else:
            setattr(self, g["flag"].replace("-", "_"), True)


def parse(header: str | None, model: object = None) -> Behavior:
    """Behaviour from the model name, then the header (which wins)."""
    b = Behavior()
    if isinstance(model, str):
        for m in _MODEL_RE.finditer(model.lower()):
            b.apply(m)
    for raw in re.split(r"[,\s]+", (header or "").strip().lower()):
        if not raw:
            continue
        token = raw[5:] if raw.startswith("fake-") else raw
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            raise BehaviorError(f"unknown {HEADER} token {raw!r}")
        b.apply(match)
    return b
