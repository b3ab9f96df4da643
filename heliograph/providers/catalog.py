"""Built-in providers as data: where they live, which env var holds the key, which models
they serve, whether they need a key, and their id in genai-prices. Adding an
OpenAI-compatible provider is one entry here."""

from __future__ import annotations

from dataclasses import dataclass

# Each provider `type` a config may name, and its class (registry.py loads it). Here, not
# in registry.py: checking a config's `type` must not import the providers and aiohttp
# (~6 MB) into the processes that only read the config (the background host).
ADAPTERS: dict[str, str] = {
    "openai": "heliograph.providers.openai:OpenAICompatible",
    "anthropic": "heliograph.providers.anthropic:Anthropic",
    "gemini": "heliograph.providers.gemini:Gemini",
    "azure": "heliograph.providers.azure:AzureOpenAI",
}


@dataclass(frozen=True)
class BuiltinProvider:
    type: str
    base_url: str
    key_env: tuple[str, ...]
    # Model-name prefixes this provider answers for when the caller names no provider.
    model_prefixes: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    # The provider's id in genai-prices (costs.py); None: it has no list price (a local
    # server), so its calls are never priced by borrowing a cloud provider's price.
    price_id: str | None = None
    # A local server called without a key. Such a provider is only used when the config
    # names it ([providers.<name>]): its default address is a loopback port that may be
    # anything on the gateway's host.
    keyless: bool = False
    # It serves OpenAI's Responses API itself (and keeps stored responses); other
    # providers get it translated to and from chat (providers/responses_via_chat.py).
    responses_api: bool = False


BUILTIN_PROVIDERS: dict[str, BuiltinProvider] = {
    "openai": BuiltinProvider(
        "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
        ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage",
         "omni-moderation", "codex-", "dall-e-", "tts-", "whisper-", "text-moderation-",
         "chatgpt-image-"), price_id="openai", responses_api=True),
    "anthropic": BuiltinProvider(
        "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",), ("claude-",),
        price_id="anthropic"),
    "gemini": BuiltinProvider(
        "gemini", "https://generativelanguage.googleapis.com", ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        ("gemini-", "gemma-", "text-embedding-004", "gemini-embedding-"), price_id="google"),
    # Azure OpenAI has no fixed endpoint: base_url (https://<resource>.openai.azure.com)
    # comes from the config file, model names are deployment names (providers/azure.py).
    "azure": BuiltinProvider(
        "azure", "", ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"), price_id="azure",
        responses_api=True),
    "groq": BuiltinProvider(
        "openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",),
        ("llama-3", "llama3-", "gemma2-", "qwen-qwq", "meta-llama/llama-4"), price_id="groq"),
    "mistral": BuiltinProvider(
        "openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",),
        ("mistral-", "codestral-", "ministral-", "pixtral-", "magistral-", "open-mistral-",
         "open-mixtral-"), price_id="mistral"),
    "deepseek": BuiltinProvider(
        "openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), ("deepseek-",),
        price_id="deepseek"),
    "xai": BuiltinProvider(
        "openai", "https://api.x.ai/v1", ("XAI_API_KEY",), ("grok-",), price_id="x-ai"),
    "together": BuiltinProvider(
        "openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",),
        ("meta-llama/", "mistralai/", "Qwen/", "deepseek-ai/", "togethercomputer/"),
        price_id="together"),
    "openrouter": BuiltinProvider(
        "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",), price_id="openrouter"),
    "fireworks": BuiltinProvider(
        "openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",),
        ("accounts/fireworks/",), price_id="fireworks"),
    "cerebras": BuiltinProvider(
        "openai", "https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",), ("llama3.1-", "llama-4-"),
        price_id="cerebras"),
    "perplexity": BuiltinProvider(
        "openai", "https://api.perplexity.ai", ("PERPLEXITY_API_KEY", "PPLX_API_KEY"),
        ("sonar",), price_id="perplexity"),
    "ollama": BuiltinProvider(
        "openai", "http://127.0.0.1:11434/v1", ("OLLAMA_API_KEY",), keyless=True),
    "vllm": BuiltinProvider(
        "openai", "http://127.0.0.1:8000/v1", ("VLLM_API_KEY",), keyless=True),
}
