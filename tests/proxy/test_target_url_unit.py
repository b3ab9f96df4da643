"""Helicone-Target-URL / Helicone-OpenAI-Api-Base: only allow-listed bases, normalised."""

import pytest

from heliograph.config import load_settings
from heliograph.errors import BadRequest
from heliograph.providers.registry import Registry
from heliograph.proxy import target_url
from heliograph.proxy.headers import RequestOptions

ALLOWED = ("https://LLM.internal/", "http://10.0.0.5:8000/v1")


def registry(allowed=ALLOWED):
    return Registry(load_settings(environ={}, allowed_target_urls=allowed), http=None)


def chain(options, path="/v1/chat/completions", reg=None):
    return target_url.chain(reg or registry(), path, options, ["m1", "m2"])


def test_no_header_no_target():
    assert chain(RequestOptions()) is None


@pytest.mark.parametrize("options, base", [
    (RequestOptions(target_url="https://llm.internal"), "https://llm.internal/v1"),
    (RequestOptions(target_url="HTTPS://llm.INTERNAL/"), "https://llm.internal/v1"),
    (RequestOptions(target_url="https://llm.internal/v1"), "https://llm.internal/v1"),
    (RequestOptions(openai_api_base="https://llm.internal/openai/v1/"),
     "https://llm.internal/openai/v1"),
    (RequestOptions(openai_api_base="http://10.0.0.5:8000/v1"), "http://10.0.0.5:8000/v1"),
    # The origin plus the request's /v1 is the listed base.
    (RequestOptions(target_url="http://10.0.0.5:8000"), "http://10.0.0.5:8000/v1"),
])
def test_allowed_targets_get_every_model_of_the_chain(options, base):
    targets = chain(options)
    assert [t.model for t in targets] == ["m1", "m2"]
    assert {t.provider.settings.base_url for t in targets} == {base}
    assert targets[0].provider.name == "custom" and targets[0].provider.api_key == ""


@pytest.mark.parametrize("options, says", [
    (RequestOptions(target_url="https://evil.example"), "not on this gateway's allow-list"),
    (RequestOptions(target_url="https://llm.internal.evil.example"), "allow-list"),
    (RequestOptions(openai_api_base="http://10.0.0.5:8000/v10"), "allow-list"),
    (RequestOptions(openai_api_base="http://10.0.0.5:8000/v1/../admin"), "dot segments"),
    (RequestOptions(target_url="https://user:pw@llm.internal"), "without credentials"),
    (RequestOptions(target_url="https://llm.internal?x=1"), "without credentials, query"),
    (RequestOptions(target_url="ftp://llm.internal"), "must be an http(s) URL"),
    (RequestOptions(target_url="https://llm.internal:99999"), "not a valid URL"),
])
def test_other_targets_are_400s(options, says):
    with pytest.raises(BadRequest) as info:
        chain(options)
    assert says in info.value.message


def test_an_empty_allow_list_allows_nothing():
    with pytest.raises(BadRequest) as info:
        chain(RequestOptions(target_url="https://llm.internal"), reg=registry(()))
    assert "empty: no target URL is allowed" in info.value.message


def test_a_configured_provider_at_the_target_lends_its_key_and_name():
    reg = registry(("https://api.groq.com/openai/v1",))
    (first, _) = chain(RequestOptions(openai_api_base="https://api.groq.com/openai/v1"),
                       reg=reg)
    assert first.provider.name == "groq"
