"""Azure OpenAI URLs and credentials from configuration."""

import pytest

from heliograph.config import ProviderSettings
from heliograph.errors import BadRequest
from heliograph.providers.azure import AzureOpenAI
from heliograph.providers.base import Call


def azure(base_url="https://res.openai.azure.com", api_version=""):
    settings = ProviderSettings(name="azure", type="azure", base_url=base_url,
                                api_version=api_version)
    return AzureOpenAI(settings, "key-1", http=None)


def call(model="my deploy", auth=None):
    return Call({"model": model}, None, {}, auth)


def test_dated_api_versions_use_deployment_urls():
    assert azure()._chat_url(call()) == ("https://res.openai.azure.com/openai/deployments/"
                                         "my%20deploy/chat/completions?api-version=2024-10-21")
    assert azure(api_version="2025-04-01-preview")._embeddings_url(call("e")).endswith(
        "/openai/deployments/e/embeddings?api-version=2025-04-01-preview")


def test_v1_api_and_responses_use_the_v1_path():
    assert azure(api_version="v1")._chat_url(call()) == \
        "https://res.openai.azure.com/openai/v1/chat/completions"
    assert azure("https://res.openai.azure.com/openai")._responses_url() == \
        "https://res.openai.azure.com/openai/v1/responses"


def test_keys_go_in_api_key_and_entra_tokens_as_bearer():
    assert azure()._headers(call())["api-key"] == "key-1"
    byok = azure()._headers(call(auth="Bearer callers-key"))
    assert byok["api-key"] == "callers-key" and "authorization" not in byok
    entra = azure()._headers(call(auth="Bearer eyJhbGciOi.x.y"))
    assert entra["authorization"] == "Bearer eyJhbGciOi.x.y" and "api-key" not in entra


def test_an_endpoint_is_required():
    with pytest.raises(BadRequest) as info:
        azure(base_url="")._chat_url(call())
    assert "base_url" in info.value.message
