"""The OpenAI chat field table and the reasoning table, unit by unit."""

import pytest

from heliograph.errors import BadRequest
from heliograph.formats import reasoning
from heliograph.formats.anthropic.request_from_openai import to_anthropic
from heliograph.formats.gemini.request_from_openai import to_gemini
from heliograph.formats.openai.request_fields import FIELDS, REFUSED, check

HI = [{"role": "user", "content": "Hi"}]


def body(**fields):
    return {"model": "m", "messages": HI, **fields}


@pytest.mark.parametrize("target", ["Anthropic", "Gemini"])
def test_defaults_of_refused_fields_pass(target):
    check(body(logprobs=False, top_logprobs=0, modalities=["text"], n=1, audio=None),
          target)


@pytest.mark.parametrize("target, column", [("Anthropic", 0), ("Gemini", 1)])
def test_every_refused_field_is_refused_when_it_asks(target, column):
    asks = {"n": 2, "logprobs": True, "top_logprobs": 3, "modalities": ["text", "audio"],
            "audio": {"voice": "alloy"}, "prediction": {"type": "content"},
            "web_search_options": {}, "functions": [{"name": "f"}], "function_call": "auto"}
    for name, (claude, gemini) in FIELDS.items():
        if (claude, gemini)[column] != REFUSED:
            continue
        with pytest.raises(BadRequest) as caught:
            check(body(**{name: asks[name]}), target)
        assert f"({name})" in caught.value.message


def test_reasoning_tables():
    assert [reasoning.effort_of(b) for b in (1, 2048, 2049, 8192, 30000)] == \
        ["low", "low", "medium", "medium", "high"]
    assert reasoning.gemini_thinking("none", "gemini-2.5-flash") == {"thinkingBudget": 0}
    assert reasoning.gemini_thinking("high", "gemini-3-pro") == {"thinkingLevel": "high"}


def test_claude_thinking_and_gemini_thinking_from_anthropics_own_object():
    sent, _ = to_anthropic(body(model="claude-sonnet-4-5",
                                thinking={"type": "enabled", "budget_tokens": 3000}))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert sent["max_tokens"] == 8192 + 3000
    config = to_gemini(body(thinking={"type": "disabled"}))["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 0}


def test_top_k_reaches_both():
    assert to_anthropic(body(top_k=5))[0]["top_k"] == 5
    assert to_gemini(body(top_k=5))["generationConfig"]["topK"] == 5
