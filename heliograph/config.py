"""Typed settings, loaded once. The only module that reads environment variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///heliograph.db"


@dataclass(frozen=True)
class ProviderSettings:
    """One upstream as configured; built-in providers are merged under user overrides."""

    name: str
    type: str = "openai"  # wire format the provider speaks
    base_url: str = ""
    api_key: str = ""
    models: tuple[str, ...] = ()
    # Extra HTTP headers sent upstream on every call (e.g. OpenRouter's X-Title).
    headers: dict[str, str] = field(default_factory=dict)
    # Azure OpenAI's api-version query parameter ("v1" for its version-less v1 API).
    api_version: str = ""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    workers: int = 1
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = ""
    # Where the durable request journal lives (a folder beside the database by default).
    journal_dir: str = ""
    max_body_mb: float = 20
    upstream_connect_timeout_s: float = 10
    upstream_timeout_s: float = 600
    admin_key: str = ""
    # While the shared state (Redis / database) is unreachable, rate limits allow requests
    # (marked Helicone-RateLimit-Status: degraded) rather than refusing them.
    ratelimit_fail_open: bool = True
    # The query API's read side: a query running longer is stopped (504 query_timeout);
    # its thread pool (and, on PostgreSQL, its connection pool) has this many threads.
    analytics_query_timeout_s: float = 15.0
    analytics_threads: int = 2
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    # Provider API keys found in the environment, by provider name.
    env_provider_keys: dict[str, str] = field(default_factory=dict)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def resolved_journal_dir(self) -> Path:
        if self.journal_dir:
            return Path(self.journal_dir)
        if self.database_url.startswith("sqlite:///"):
            db_path = Path(self.database_url[len("sqlite:///"):])
            return db_path.parent / (db_path.name + ".journal")
        return Path(".heliograph") / "journal"


def load_settings(config_path: str | None = None, environ: dict[str, str] | None = None,
                  **overrides) -> Settings:
    """File, then environment, then explicit overrides (CLI flags) — later wins."""
    env = dict(os.environ if environ is None else environ)
    data: dict = {}
    if config_path:
        with open(config_path, "rb") as fh:
            data = tomllib.load(fh)

    storage = data.get("storage", {})
    limits = data.get("limits", {})
    server = data.get("server", {})
    analytics = data.get("analytics", {})
    values: dict = {
        "host": server.get("host", "127.0.0.1"),
        "port": int(server.get("port", 8787)),
        "workers": int(server.get("workers", 1)),
        "database_url": storage.get("database_url", DEFAULT_DATABASE_URL),
        "redis_url": storage.get("redis_url", ""),
        "journal_dir": storage.get("journal_dir", ""),
        "max_body_mb": float(limits.get("max_body_mb", 20)),
        "upstream_connect_timeout_s": float(limits.get("upstream_connect_timeout_s", 10)),
        "upstream_timeout_s": float(limits.get("upstream_timeout_s", 600)),
        "ratelimit_fail_open": bool(limits.get("ratelimit_fail_open", True)),
        "analytics_query_timeout_s": float(analytics.get("query_timeout_s", 15.0)),
        "analytics_threads": max(1, int(analytics.get("threads", 2))),
    }
    if env.get("HELIOGRAPH_DATABASE_URL"):
        values["database_url"] = env["HELIOGRAPH_DATABASE_URL"]
    if env.get("HELIOGRAPH_REDIS_URL"):
        values["redis_url"] = env["HELIOGRAPH_REDIS_URL"]
    if env.get("HELIOGRAPH_JOURNAL_DIR"):
        values["journal_dir"] = env["HELIOGRAPH_JOURNAL_DIR"]
    values["admin_key"] = env.get("HELIOGRAPH_ADMIN_KEY", "")

    from heliograph.providers.catalog import BUILTIN_PROVIDERS

    providers: dict[str, ProviderSettings] = {}
    for name, builtin in BUILTIN_PROVIDERS.items():
        providers[name] = ProviderSettings(name=name, type=builtin.type,
                                           base_url=builtin.base_url,
                                           models=builtin.models)
    for name, table in data.get("providers", {}).items():
        base = providers.get(name, ProviderSettings(name=name))
        models = tuple(table.get("models", ())) or base.models
        providers[name] = ProviderSettings(
            name=name,
            type=table.get("type", base.type),
            base_url=table.get("base_url", base.base_url).rstrip("/"),
            api_key=table.get("api_key", base.api_key),
            models=models,
            headers=dict(table.get("headers", {})),
            api_version=str(table.get("api_version", base.api_version)),
        )
    values["providers"] = providers
    env_keys = {}
    for name, builtin in BUILTIN_PROVIDERS.items():
        for var in builtin.key_env:
            if env.get(var):
                env_keys[name] = env[var]
                break
    values["env_provider_keys"] = env_keys
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
