"""Fixtures of the unit tests. Settings are built the way the gateway builds them, from a
TOML config (one place to adapt if settings loading changes)."""

from __future__ import annotations

import pytest

from heliograph.config import load_settings
from heliograph.providers.http import HttpClient
from heliograph.providers.registry import Registry

CONFIG = """
[providers.local]
type = "openai"
base_url = "http://127.0.0.1:11434/v1"
models = ["llama3.2", "gpt-4o-local"]
"""


@pytest.fixture
def registry(tmp_path) -> Registry:
    """The model router over the built-in providers plus `local` (an OpenAI-compatible
    server whose models are listed). A provider of a wire format the gateway cannot
    speak never gets this far: the config refuses it (tests/test_config.py)."""
    config = tmp_path / "heliograph.toml"
    config.write_text(CONFIG)
    settings = load_settings(str(config), environ={"OPENAI_API_KEY": "sk-openai"})
    # Never used to connect here: resolving a model makes no request.
    return Registry(settings, HttpClient(1, 1))
