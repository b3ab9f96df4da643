"""The streamed answer nginx gives the benchmark's streaming scenario: what OpenAI sends for
`"stream": true` with `stream_options.include_usage` (every chunk carries `"usage":null`,
then a chunk with empty choices and the usage, then [DONE]) — 22 events, about 6.8 KB,
the size of a short chat answer.

nginx `return` takes it in a single-quoted string where `$` interpolates and `\\` escapes:
the events are kept free of both (and of `'`), and `nginx_literal` writes the newlines as
the `\\n` escapes nginx understands.
"""

from __future__ import annotations

import json

WORDS = ("Sure", "!", " Here", " is", " a", " short", " answer", " to", " your", " question",
         ":", " streaming", " keeps", " the", " user", " waiting", " less", ".")

_BASE = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion.chunk",
         "created": 1741570283, "model": "gpt-4o-mini-2024-07-18",
         "service_tier": "default", "system_fingerprint": "fp_06737a9306"}


def _chunk(delta: dict, finish: str | None = None, usage=None, choices=True,
           obfuscation: str | None = None) -> str:
    body = dict(_BASE)
    body["choices"] = [{"index": 0, "delta": delta, "logprobs": None,
                        "finish_reason": finish}] if choices else []
    body["usage"] = usage
    if obfuscation is not None:
        body["obfuscation"] = obfuscation
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


def _padding(i: int) -> str:
    """A stand-in for OpenAI's random `obfuscation` value: letters and digits, 3-15 long."""
    return ("Kq7Zx2Lm9Pw4Rt8Vb" * 2)[i % 7:i % 7 + 3 + (i * 5) % 13]


def sse_events(obfuscation: bool = False) -> str:
    """`obfuscation`: every chunk ends with OpenAI's `"obfuscation"` member, a random string
    (stream_options.include_obfuscation, on by default since 2025)."""
    pad = _padding if obfuscation else (lambda i: None)
    events = [_chunk({"role": "assistant", "content": "", "refusal": None}, obfuscation=pad(0))]
    events += [_chunk({"content": w}, obfuscation=pad(i + 1)) for i, w in enumerate(WORDS)]
    events.append(_chunk({}, finish="stop", obfuscation=pad(len(WORDS) + 1)))
    events.append(_chunk({}, choices=False, obfuscation=pad(len(WORDS) + 2), usage={
        "prompt_tokens": 8, "completion_tokens": len(WORDS), "total_tokens": 8 + len(WORDS),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}}))
    events.append("data: [DONE]\n\n")
    return "".join(events)


SSE_BODY = sse_events()
# The same answer as OpenAI sends it today (bench/relay_instructions.py --obfuscation).
SSE_BODY_OBFUSCATED = sse_events(obfuscation=True)
assert not set("'$\\") & set(SSE_BODY)


# nginx refuses a config token longer than 4 KB: the body is set in parts, in variables
# that `return` joins.
PART = 3000


def nginx_parts(text: str) -> int:
    return -(-len(text) // PART)


def nginx_sets(name: str, text: str) -> str:
    """`set $<name>0 '...';` lines, one per part of text, newlines as nginx's \\n."""
    lines = []
    for i in range(nginx_parts(text)):
        part = text[i * PART:(i + 1) * PART].replace("\n", "\\n")
        lines.append(f"            set ${name}{i} '{part}';")
    return "\n".join(lines)
