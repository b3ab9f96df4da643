"""Model names → provider and the provider's own id: explicit providers (Helicone's names
too), Helicone-style ids from heliograph/data/model_aliases.toml, and unknown providers."""

import pytest

from heliograph.config import load_settings
from heliograph.errors import BadRequest, NotFound
from heliograph.providers import aliases
from heliograph.providers.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry(load_settings(environ={}), http=None)


@pytest.mark.parametrize("model, provider, provider_model", [
    ("claude-sonnet-4", "anthropic", "claude-sonnet-4-20250514"),
    ("claude-sonnet-4/anthropic", "anthropic", "claude-sonnet-4-20250514"),
    ("anthropic/claude-3.5-haiku", "anthropic", "claude-3-5-haiku-20241022"),
    ("claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"),  # a real id
    ("deepseek-v3", "deepseek", "deepseek-chat"),
    ("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
    ("gemini-2.5-flash/gemini", "gemini", "gemini-2.5-flash"),
    ("gemini/gemini-2.0-flash", "gemini", "gemini-2.0-flash"),
    ("gpt-4o-mini/openai", "openai", "gpt-4o-mini"),
    # Slashes inside model ids are not provider suffixes.
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together",
     "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks",
     "accounts/fireworks/models/llama-v3p1-8b-instruct"),
    ("openrouter/anthropic/claude-3.5-haiku", "openrouter", "anthropic/claude-3.5-haiku"),
])
def test_names_resolve_to_the_providers_own_id(registry, model, provider, provider_model):
    target = registry.resolve(model)
    assert (target.provider.name, target.model) == (provider, provider_model)


@pytest.mark.parametrize("model, unknown", [
    ("gemini-2.0-flash/vertex", "vertex"),
    ("gemini-2.0-flash/google", "google"),
    ("gpt-4o/opnai", "opnai"),
    ("bedrock/claude-sonnet-4", "bedrock"),
])
def test_an_unknown_provider_is_a_400_naming_the_known_ones(registry, model, unknown):
    with pytest.raises(BadRequest) as info:
        registry.resolve(model)
    assert info.value.code == "unknown_provider"
    assert f"unknown provider {unknown!r}" in info.value.message
    assert "anthropic, azure, cerebras" in info.value.message


def test_an_unknown_model_is_still_a_404(registry):
    with pytest.raises(NotFound):
        registry.resolve("my-model/v2")


def test_the_alias_data_is_well_formed(registry):
    data = aliases.load()
    assert set(data.providers.values()) <= set(registry.settings.providers)
    assert set(data.models) <= set(registry.settings.providers)
    for provider, table in data.models.items():
        for name, real in table.items():
            assert name != real and real not in table, (provider, name)
