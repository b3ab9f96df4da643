"""Which providers get the Responses API untouched (and keep stored responses
themselves) and which get it translated to chat: the catalog's (OpenAI), Azure under any
name, and any OpenAI-compatible provider whose config says `responses_api = true`;
`responses_api = false` turns it off even for OpenAI."""

import pytest

from heliograph.config import load_settings
from heliograph.providers.http import HttpClient
from heliograph.providers.registry import Registry


@pytest.fixture
def registry(tmp_path):
    config = tmp_path / "h.toml"
    config.write_text("""
[providers.azure]
base_url = "https://r.openai.azure.com"
[providers.corp-azure]
type = "azure"
base_url = "https://corp.openai.azure.com"
[providers.vllm]
base_url = "http://127.0.0.1:8000/v1"
responses_api = true
[providers.local]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
[providers.proxied-openai]
type = "openai"
base_url = "https://proxy.example/v1"
responses_api = false
""")
    return Registry(load_settings(str(config), environ={}), HttpClient(1, 1))


@pytest.mark.parametrize("name, native", [
    ("openai", True), ("azure", True), ("corp-azure", True), ("vllm", True),
    ("local", False), ("proxied-openai", False), ("mistral", False), ("groq", False),
    ("anthropic", False), ("gemini", False),
])
def test_who_serves_the_responses_api_itself(registry, name, native):
    assert registry.provider(name).stores_responses is native
