"""Names → providers, and a `model` field → the provider that serves it.

Adapters are chosen by wire-format type, by import string, loaded on first use.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from heliograph.config import ProviderSettings, Settings
from heliograph.errors import BadRequest, NotFound
from heliograph.providers import aliases
from heliograph.providers.base import Provider
from heliograph.providers.catalog import ADAPTERS, BUILTIN_PROVIDERS
from heliograph.providers.http import HttpClient

# A trailing `/name` read as a provider name: lower-case letters and hyphens, as provider
# names are (a model id has digits or dots: `meta-llama/Llama-3.3-70B`, `…/llama-v3p1-8b`).
_PROVIDER_SHAPED = re.compile(r"^[a-z][a-z-]{1,30}$")

# The name of a provider reached only through an allowed target URL.
CUSTOM_PROVIDER = "custom"


@dataclass(frozen=True)
class Target:
    provider: Provider
    model: str          # the model name as the provider knows it


def _load(import_string: str) -> type[Provider]:
    module, _, attr = import_string.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry:
    def __init__(self, settings: Settings, http: HttpClient):
        self.settings = settings
        self.http = http
        self._providers: dict[str, Provider] = {}
        self._resolved: dict[str, Target] = {}
        self._at_base: dict[str, Provider] = {}
        self._aliases = aliases.load()
        # Exact model names from config (`models = [...]`) win over built-in prefixes;
        # user-defined providers are consulted before built-in ones.
        self._exact: dict[str, str] = {}
        builtin_names = set(BUILTIN_PROVIDERS)
        ordered = sorted(settings.providers.values(), key=lambda p: p.name in builtin_names)
        for prov in ordered:
            for model in prov.models:
                self._exact.setdefault(model, prov.name)
        self._prefixes: list[tuple[str, str]] = sorted(
            ((prefix, name) for name, b in BUILTIN_PROVIDERS.items() for prefix in b.model_prefixes),
            key=lambda item: -len(item[0]))

    def provider(self, name: str) -> Provider:
        cached = self._providers.get(name)
        if cached is not None:
            return cached
        prov_settings = self.settings.providers.get(name)
        if prov_settings is None:
            raise NotFound(f"unknown provider {name!r}; known: "
                           f"{', '.join(sorted(self.settings.providers))}",
                           code="provider_not_found")
        adapter = ADAPTERS.get(prov_settings.type)
        if adapter is None:
            raise BadRequest(f"provider {name!r} speaks {prov_settings.type!r}, which this "
                             "gateway cannot talk to yet", code="unsupported_provider")
        api_key = prov_settings.api_key or self.settings.env_provider_keys.get(name, "")
        builtin = BUILTIN_PROVIDERS.get(name)
        if builtin is not None and builtin.keyless and not (prov_settings.configured
                                                             or api_key):
            # Its default address is a loopback port on the gateway's own host, where
            # anything may listen: a caller's `vllm/x` must not reach it unasked.
            raise BadRequest(f"provider {name!r} is a local server the gateway only calls "
                             f"when configured: add [providers.{name}] with its base_url "
                             f"(default {builtin.base_url}) to the config file",
                             code="provider_not_configured")
        instance = _load(adapter)(prov_settings, api_key, self.http)
        self._providers[name] = instance
        return instance

    def at_base_url(self, base_url: str) -> Provider:
        """An OpenAI-compatible provider at `base_url` (an allowed Helicone-Target-URL,
        proxy/target_url.py): the configured one at that very URL, with its key and name,
        else one named `custom` without a key of its own (only a caller's own key goes)."""
        found = self._at_base.get(base_url)
        if found is None:
            for configured in self.settings.providers.values():
                if configured.base_url.rstrip("/") == base_url and configured.type == "openai":
                    found = self.provider(configured.name)
                    break
            else:
                found = _load(ADAPTERS["openai"])(ProviderSettings(
                    name=CUSTOM_PROVIDER, base_url=base_url, configured=True), "", self.http)
            if len(self._at_base) >= 256:  # bounded by the allow-list, and then some
                self._at_base.clear()
            self._at_base[base_url] = found
        return found

    def resolve(self, model: str) -> Target:
        """`gpt-4o-mini`, `openai/gpt-4o-mini` or `gpt-4o-mini/openai`. Memoised: it runs
        on every request and the answer only depends on the configuration."""
        target = self._resolved.get(model)
        if target is None:
            target = self._resolve(model)
            if len(self._resolved) > 10_000:  # model names are caller-chosen: stay bounded
                self._resolved.clear()
            self._resolved[model] = target
        return target

    def _resolve(self, model: str) -> Target:
        """Explicit `provider/model` or `model/provider` (Helicone's provider names
        too); else a model the config lists; else a Helicone-style id (aliases data);
        else the provider whose model prefix matches. Helicone ids are mapped to the
        provider's own id either way."""
        model = model.strip()
        if not model:
            raise BadRequest("the model field is empty", code="model_required")
        aliases = self._aliases
        if "/" in model:
            head, _, rest = model.partition("/")
            name = aliases.providers.get(head, head)
            if name in self.settings.providers and rest:
                return Target(self.provider(name), aliases.model(name, rest))
            rest, _, tail = model.rpartition("/")
            name = aliases.providers.get(tail, tail)
            if name in self.settings.providers and rest:
                return Target(self.provider(name), aliases.model(name, rest))
            if _PROVIDER_SHAPED.match(tail) and self._serving(rest) is not None:
                # `gemini-2.0-flash/vertex`: meant as a provider, and not one we know —
                # sending it to gemini's prefix owner under a wrong name would mislead.
                raise self._unknown_provider(tail, model)
        serving = self._serving(model)
        if serving is None:
            head, _, rest = model.partition("/")
            if rest and _PROVIDER_SHAPED.match(head) and self._serving(rest) is not None:
                raise self._unknown_provider(head, model)  # `vertex/gemini-2.0-flash`
            raise NotFound(f"model {model!r} is not served by any configured provider; name "
                           "one explicitly as provider/model, or list it under "
                           "[providers.<name>] models", code="model_not_found")
        return Target(self.provider(serving), aliases.model(serving, model))

    def _unknown_provider(self, name: str, model: str) -> BadRequest:
        return BadRequest(f"unknown provider {name!r} in model {model!r}; known providers: "
                          f"{', '.join(sorted(self.settings.providers))}",
                          code="unknown_provider")

    def _serving(self, model: str) -> str | None:
        """The provider a bare model name goes to, or None."""
        name = self._exact.get(model) or self._aliases.owners.get(model)
        if name is None:
            for prefix, candidate in self._prefixes:
                if model.startswith(prefix):
                    return candidate
        return name
