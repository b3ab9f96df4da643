"""Prices of the OpenAI endpoints that are not chat: audio (speech by input characters,
transcription by audio seconds or by tokens), images (by image and text tokens),
moderations (free), legacy completions (tokens). From genai-prices' bundled data, like
costs.py, but through `ModelPrice.calc_price` itself: these calls are rare and their
units (characters, audio seconds, image tokens) are not the ones costs.py compiles for
the hot path. A model genai-prices has no price for (DALL·E's per-image prices) is
`cost_known: false`, never a silent 0. genai-prices is imported on the first such call,
not with this module: a worker that only relays chat never loads it (see costs.py).
"""

from __future__ import annotations

import datetime as _dt
import warnings
from typing import Any

from heliograph import costs
from heliograph.providers.catalog import BUILTIN_PROVIDERS


def _price(provider: str, model: str, usage: dict[str, int | float],
           at: float) -> float | None:
    from genai_prices.data import providers
    from genai_prices.types import Usage as PriceUsage

    builtin = BUILTIN_PROVIDERS.get(provider)
    wanted = builtin.price_id if builtin and builtin.price_id else provider
    gp = next((p for p in providers if p.id == wanted), None)
    if gp is None:
        return None
    info = gp.find_model(model.strip().lower(), all_providers=providers)
    if info is None:
        return None
    try:
        with warnings.catch_warnings():  # an unknown unit is our bug, not the caller's
            warnings.simplefilter("ignore")
            prices = info.get_prices(_dt.datetime.fromtimestamp(at, _dt.UTC))
            return float(prices.calc_price(PriceUsage(**usage))["total_price"])
    except (ValueError, TypeError, ArithmeticError):
        return None


def _count(value: Any) -> int:
    return costs.token_count(value)


def _units(kind: str, request: dict, answer: Any) -> tuple[dict[str, int | float], int, int]:
    """(genai-prices usage, prompt tokens, completion tokens) of one call."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    if kind == "speech":
        text = request.get("input")
        return ({"input_characters": len(text)} if isinstance(text, str) else {}), 0, 0
    if usage.get("type") == "duration":   # whisper-1: billed by the second of audio
        seconds = usage.get("seconds")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) \
                and seconds >= 0:
            return {"audio_seconds": seconds, "input_audio_seconds": seconds}, 0, 0
        return {}, 0, 0
    if "prompt_tokens" in usage:          # completions, moderations' rare usage
        prompt, completion = _count(usage.get("prompt_tokens")), \
            _count(usage.get("completion_tokens"))
        return {"input_tokens": prompt, "output_tokens": completion}, prompt, completion
    if "input_tokens" in usage:           # gpt-image-*, gpt-4o-transcribe
        prompt, completion = _count(usage.get("input_tokens")), \
            _count(usage.get("output_tokens"))
        details = usage.get("input_tokens_details") or usage.get("input_token_details") or {}
        units: dict[str, int | float] = {"input_tokens": prompt, "output_tokens": completion}
        if isinstance(details, dict):
            if details.get("image_tokens"):
                units["input_image_tokens"] = _count(details["image_tokens"])
            if details.get("audio_tokens"):
                units["input_audio_tokens"] = _count(details["audio_tokens"])
        return units, prompt, completion
    return {}, 0, 0


def price(kind: str, provider: str, model: str, request: dict, answer: Any,
          at: float) -> costs.PricedUsage:
    """The record's usage and cost fields for one call of endpoint `kind` ("speech",
    "transcription", "image", "moderation", "completion", or "free": files, batches and
    stored responses, which bill nothing themselves; a batch's work is billed when it
    runs)."""
    if kind == "completion":   # chat's token usage: priced as chat is (cached tokens…)
        usage = answer.get("usage") if isinstance(answer, dict) else None
        if isinstance(usage, dict):
            return costs.price_usage(provider, model, costs.usage_from_openai(usage), at)
    # Free calls use no tokens either: a usage in the answer (a stored response read
    # back, a batch's totals) was counted when that work ran.
    units, prompt, completion = ({}, 0, 0) if kind == "free" else \
        _units(kind, request, answer)
    usd = 0.0 if kind == "free" else None
    if units or kind == "moderation":
        usd = _price(provider, model, units, at) if model else None
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "cached_tokens": 0,
            "cache_write_tokens": 0, "reasoning_tokens": 0,
            "cost_usd": usd, "cost_known": usd is not None}
