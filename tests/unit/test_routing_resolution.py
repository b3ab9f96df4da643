"""Which provider serves a `model` field (heliograph/providers/registry.py): a bare name by
its prefix or a configured model list, `provider/model`, `model/provider`; unknown names
and providers are clear 4xx errors."""

from __future__ import annotations

import pytest

from heliograph.errors import BadRequest, NotFound


def resolved(registry, model: str) -> tuple[str, str]:
    target = registry.resolve(model)
    return target.provider.name, target.model


@pytest.mark.parametrize("model, provider", [
    ("gpt-4o-mini", "openai"),
    ("o3-mini", "openai"),
    ("text-embedding-3-small", "openai"),
    ("claude-3-5-haiku-latest", "anthropic"),
    ("gemini-2.5-flash", "gemini"),
    ("llama-3.1-8b-instant", "groq"),
    ("mistral-large-latest", "mistral"),
    ("deepseek-chat", "deepseek"),
    ("grok-3", "xai"),
    ("meta-llama/llama-4-scout", "groq"),       # the longest prefix wins...
    ("meta-llama/Llama-3-70b", "together"),     # ...over a shorter one
])
def test_a_bare_model_goes_to_the_provider_of_its_prefix(registry, model, provider):
    assert resolved(registry, model) == (provider, model)


def test_configured_model_lists_win_over_builtin_prefixes(registry):
    assert resolved(registry, "llama3.2") == ("local", "llama3.2")
    assert resolved(registry, "gpt-4o-local") == ("local", "gpt-4o-local")


@pytest.mark.parametrize("model, expected", [
    ("openai/gpt-4o-mini", ("openai", "gpt-4o-mini")),
    ("groq/llama-3.1-8b-instant", ("groq", "llama-3.1-8b-instant")),
    ("openrouter/anthropic/claude-3.5-sonnet", ("openrouter", "anthropic/claude-3.5-sonnet")),
    ("gpt-4o-mini/groq", ("groq", "gpt-4o-mini")),
    ("x/groq", ("groq", "x")),
    ("meta-llama/Llama-3-70b/together", ("together", "meta-llama/Llama-3-70b")),
    ("local/anything", ("local", "anything")),
    ("  gpt-4o-mini  ", ("openai", "gpt-4o-mini")),
])
def test_a_named_provider_before_or_after_the_model(registry, model, expected):
    assert resolved(registry, model) == expected


def test_the_same_name_resolves_to_the_same_target(registry):
    assert registry.resolve("gpt-4o-mini") is registry.resolve("gpt-4o-mini")


@pytest.mark.parametrize("model", ["no-such-model-xyz", "nobody/knows", "knows/nobody",
                                   "openai/"])
def test_an_unknown_model_is_a_404_naming_it(registry, model):
    with pytest.raises(NotFound) as info:
        registry.resolve(model)
    assert info.value.status == 404 and info.value.code == "model_not_found"
    assert model.strip() in info.value.message


@pytest.mark.parametrize("model", ["", "   "])
def test_an_empty_model_is_a_400(registry, model):
    with pytest.raises(BadRequest) as info:
        registry.resolve(model)
    assert info.value.code == "model_required"


def test_an_unknown_provider_by_name_is_a_404(registry):
    with pytest.raises(NotFound) as info:
        registry.provider("nope")
    assert info.value.code == "provider_not_found"
