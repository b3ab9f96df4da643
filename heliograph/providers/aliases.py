"""Helicone-style model and provider names → this gateway's, from package data
(heliograph/data/model_aliases.toml): data, not code, so a new registry name is one line."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Aliases:
    providers: dict[str, str]             # Helicone's provider name → ours
    models: dict[str, dict[str, str]]     # our provider → {Helicone's id → the provider's}
    owners: dict[str, str]                # Helicone's id → the one provider that has it

    def model(self, provider: str, model: str) -> str:
        return self.models.get(provider, {}).get(model, model)


@functools.lru_cache(maxsize=1)
def load() -> Aliases:
    text = resources.files("heliograph").joinpath("data/model_aliases.toml").read_text()
    data = tomllib.loads(text)
    models = {provider: dict(table) for provider, table in data.get("models", {}).items()}
    owners: dict[str, str] = {}
    for provider, table in models.items():
        for name in table:
            # A name two providers alias is ambiguous bare: it needs its provider named.
            owners[name] = "" if name in owners else provider
    return Aliases(dict(data.get("providers", {})), models,
                   {name: owner for name, owner in owners.items() if owner})
