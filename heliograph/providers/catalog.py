"""Built-in providers as data: where they live, which env var holds the key, which models
they serve. Adding an OpenAI-compatible provider is one entry here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuiltinProvider:
    type: str
    base_url: str
    key_env: tuple[str, ...]
    # Model-name prefixes this provider answers for when the caller names no provider.
    model_prefixes: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


BUILTIN_PROVIDERS: dict[str, BuiltinProvider] = {
    "openai": BuiltinProvider(
        "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
        ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage",
         "omni-moderation", "codex-")),
    "anthropic": BuiltinProvider(
        "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",), ("claude-",)),
    "gemini": BuiltinProvider(
        "gemini", "https://generativelanguage.googleapis.com", ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        ("gemini-", "gemma-", "text-embedding-004", "gemini-embedding-")),
    # Azure OpenAI has no fixed endpoint: base_url (https://<resource>.openai.azure.com)
    # comes from the config file, model names are deployment names (providers/azure.py).
    "azure": BuiltinProvider(
        "azure", "", ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY")),
    "groq": BuiltinProvider(
        "openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",),
        ("llama-3", "llama3-", "gemma2-", "qwen-qwq", "meta-llama/llama-4")),
    "mistral": BuiltinProvider(
        "openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",),
        ("mistral-", "codestral-", "ministral-", "pixtral-", "magistral-", "open-mistral-",
         "open-mixtral-")),
    "deepseek": BuiltinProvider(
        "openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), ("deepseek-",)),
    "xai": BuiltinProvider(
        "openai", "https://api.x.ai/v1", ("XAI_API_KEY",), ("grok-",)),
    "together": BuiltinProvider(
        "openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",),
        ("meta-llama/", "mistralai/", "Qwen/", "deepseek-ai/", "togethercomputer/")),
    "openrouter": BuiltinProvider(
        "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
    "fireworks": BuiltinProvider(
        "openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",),
        ("accounts/fireworks/",)),
    "cerebras": BuiltinProvider(
        "openai", "https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",), ("llama3.1-", "llama-4-")),
    "perplexity": BuiltinProvider(
        "openai", "https://api.perplexity.ai", ("PERPLEXITY_API_KEY", "PPLX_API_KEY"),
        ("sonar",)),
    "ollama": BuiltinProvider(
        "openai", "http://127.0.0.1:11434/v1", ("OLLAMA_API_KEY",)),
    "vllm": BuiltinProvider(
        "openai", "http://127.0.0.1:8000/v1", ("VLLM_API_KEY",)),
}

# Local servers that need no key.
KEYLESS_PROVIDERS = frozenset({"ollama", "vllm"})
