"""Typed settings, loaded once. The only module that reads environment variables.

The config file is strict: every section and key is declared in SECTIONS (or is a
`[providers.NAME]` table with the keys in PROVIDER_KEYS), values are type- and
range-checked, and a mistake is a ConfigError naming the file and the key (with the
closest valid name) rather than a silent default. `[provider.openai]` used to fall back
quietly to the real OpenAI URL; now it is refused.

To add a section: add a field (with its default) to Settings, and an entry to SECTIONS
mapping each key of the section to an Option naming that field. tests/test_config.py
checks that the two agree.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heliograph._config_checks import (
    ConfigError,
    Option,
    check_provider_table,
    check_tables,
    check_value,
    parse_env_value,
)

DEFAULT_DATABASE_URL = "sqlite:///heliograph.db"
DEFAULT_CONFIG_NAME = "heliograph.toml"
CONFIG_ENV = "HELIOGRAPH_CONFIG"

__all__ = ["ConfigError", "DEFAULT_DATABASE_URL", "Option", "ProviderSettings", "SECTIONS",
           "Settings", "discover_config_path", "export_to_workers", "load_settings",
           "mask_url", "worker_settings"]


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
    # Named in the config file ([providers.<name>]), not only a built-in default.
    configured: bool = False
    # Serves OpenAI's Responses API itself; None: as the catalog says (OpenAI, Azure).
    responses_api: bool | None = None


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    workers: int = 1
    # Server limits (heliograph/server.py): what one client may cost a worker.
    max_header_kb: int = 64
    keepalive_timeout_s: float = 5
    header_timeout_s: float = 10
    body_timeout_s: float = 60
    max_connections: int = 4096
    backlog: int = 2048
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = ""
    # Where the durable request journal lives (a folder beside the database by default).
    journal_dir: str = ""
    max_body_mb: float = 20
    # multipart uploads (audio, images, files) stream through; this bounds them instead.
    max_upload_mb: float = 512
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
    # OpenTelemetry traces ([telemetry]; heliograph/sinks/telemetry.py): exported over
    # OTLP/HTTP only when an endpoint is set; prompts and answers only when asked.
    otlp_endpoint: str = ""
    telemetry_service_name: str = "heliograph"
    telemetry_capture_content: bool = False
    # Server logs ([logging]; heliograph/logs.py, heliograph/sinks/access_log.py).
    log_level: str = "info"
    access_log: bool = True
    log_format: str = "text"
    # GET /metrics (heliograph/prometheus.py): served at all; the bearer token it needs
    # ("" = none, and then only loopback callers are answered).
    metrics_enabled: bool = True
    metrics_token: str = ""
    # The web dashboard ([dashboard]; heliograph/dashboard/): served at all; the key that
    # signs its session cookies ("" = one generated and kept beside the journal); how long
    # a sign-in lasts.
    dashboard_enabled: bool = True
    dashboard_session_secret: str = ""
    dashboard_session_hours: float = 12
    # Retention ([retention]; heliograph/background/retention.py): records, and bodies
    # only, older than this many days are deleted (0: kept forever).
    retention_days: int = 0
    retention_bodies_days: int = 0
    # Alerts and budgets (heliograph/alerts/): how often the one evaluator runs, and the
    # time zone of calendar windows (day/week/month).
    alerts_interval_s: float = 60.0
    alerts_timezone: str = "UTC"
    # The email channel's SMTP server ([smtp]); "" host: email channels cannot deliver.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "heliograph@localhost"
    smtp_starttls: bool = True
    smtp_tls: bool = False
    # The dashboard's public URL, for links in alert notices ("" = no link).
    dashboard_base_url: str = ""
    # Whose entries a cached answer is served to ([cache] scope; proxy/cached.py): "key"
    # (Helicone's: per gateway key, and per provider key in bring-your-own-key mode) or
    # "organization" (shared by its keys).
    cache_scope: str = "key"
    # Base URLs a caller may send a request to with Helicone-Target-URL /
    # Helicone-OpenAI-Api-Base ([proxy]; proxy/target_url.py). Empty: none may.
    allowed_target_urls: tuple[str, ...] = ()
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    # Provider API keys found in the environment, by provider name.
    env_provider_keys: dict[str, str] = field(default_factory=dict)
    # The config file these settings came from ("" when none).
    config_path: str = ""

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_header_bytes(self) -> int:
        return self.max_header_kb * 1024

    def resolved_journal_dir(self) -> Path:
        if self.journal_dir:
            return Path(self.journal_dir)
        if self.database_url.startswith("sqlite:///"):
            db_path = Path(self.database_url[len("sqlite:///"):])
            return db_path.parent / (db_path.name + ".journal")
        return Path(".heliograph") / "journal"


_DB_SCHEMES = ("sqlite:", "postgresql://", "postgres://")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")

# section → key → Option. The attribute names are Settings fields.
SECTIONS: dict[str, dict[str, Option]] = {
    "server": {
        "host": Option(str, "host"),
        "port": Option(int, "port", at_least=1, at_most=65535),
        "workers": Option(int, "workers", at_least=1, at_most=512),
        # Total bytes of the request line and headers; more gets 431 and a closed socket.
        "max_header_kb": Option(int, "max_header_kb", at_least=1, at_most=1024),
        # An idle keep-alive connection is closed after this long.
        "keepalive_timeout_s": Option(float, "keepalive_timeout_s", above=0),
        # A connection must deliver its request line and headers within this (slowloris).
        "header_timeout_s": Option(float, "header_timeout_s", above=0),
        # ... and its whole body within this, once the headers are in.
        "body_timeout_s": Option(float, "body_timeout_s", above=0),
        # Open client connections per worker; lowered at startup to fit the descriptor limit.
        "max_connections": Option(int, "max_connections", at_least=1),
        "backlog": Option(int, "backlog", at_least=1),
    },
    "storage": {
        "database_url": Option(str, "database_url", env="HELIOGRAPH_DATABASE_URL",
                               prefixes=_DB_SCHEMES),
        "redis_url": Option(str, "redis_url", env="HELIOGRAPH_REDIS_URL",
                            prefixes=_REDIS_SCHEMES),
        "journal_dir": Option(str, "journal_dir", env="HELIOGRAPH_JOURNAL_DIR"),
    },
    "limits": {
        "max_body_mb": Option(float, "max_body_mb", above=0),
        "max_upload_mb": Option(float, "max_upload_mb", above=0),
        "upstream_connect_timeout_s": Option(float, "upstream_connect_timeout_s", above=0),
        "upstream_timeout_s": Option(float, "upstream_timeout_s", above=0),
        "ratelimit_fail_open": Option(bool, "ratelimit_fail_open"),
    },
    "analytics": {
        # A query-API or dashboard query running longer is cancelled (504 query_timeout).
        "query_timeout_s": Option(float, "analytics_query_timeout_s", above=0),
        # Threads (and database connections) per worker for the read side.
        "threads": Option(int, "analytics_threads", at_least=1, at_most=64),
    },
    "telemetry": {
        # OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318); "" exports nothing.
        "otlp_endpoint": Option(str, "otlp_endpoint", env="HELIOGRAPH_OTLP_ENDPOINT",
                                prefixes=("http://", "https://")),
        "service_name": Option(str, "telemetry_service_name"),
        # Prompts and answers as span events: off by default (they may hold secrets).
        "capture_content": Option(bool, "telemetry_capture_content"),
    },
    "logging": {
        # The env variables carry `serve --log-level/--access-log` to worker processes.
        "level": Option(str, "log_level", env="HELIOGRAPH_LOG_LEVEL",
                        choices=LOG_LEVELS),
        "access_log": Option(bool, "access_log", env="HELIOGRAPH_ACCESS_LOG"),
        "format": Option(str, "log_format", env="HELIOGRAPH_LOG_FORMAT",
                         choices=LOG_FORMATS),
    },
    "retention": {
        "days": Option(int, "retention_days", at_least=0),
        "bodies_days": Option(int, "retention_bodies_days", at_least=0),
    },
    "cache": {
        "scope": Option(str, "cache_scope", choices=("key", "organization")),
    },
    "proxy": {
        # Helicone-Target-URL / Helicone-OpenAI-Api-Base go only to these bases.
        "allowed_target_urls": Option(list, "allowed_target_urls",
                                      prefixes=("http://", "https://")),
    },
    "metrics": {
        "enabled": Option(bool, "metrics_enabled"),
        # Scrapers send it as `Authorization: Bearer <token>`.
        "token": Option(str, "metrics_token", env="HELIOGRAPH_METRICS_TOKEN"),
    },
    "dashboard": {
        "enabled": Option(bool, "dashboard_enabled"),
        # Set it (or the env variable) when several replicas serve one dashboard.
        "session_secret": Option(str, "dashboard_session_secret",
                                 env="HELIOGRAPH_DASHBOARD_SECRET"),
        "session_hours": Option(float, "dashboard_session_hours", above=0, at_most=24 * 90),
        # The dashboard's public URL, for links in alert notices ("" = no link).
        "base_url": Option(str, "dashboard_base_url", prefixes=("http://", "https://")),
    },
    "alerts": {
        "interval_s": Option(float, "alerts_interval_s", at_least=0.2, at_most=86400),
        "timezone": Option(str, "alerts_timezone"),  # an IANA name, checked on load
    },
    "smtp": {
        "host": Option(str, "smtp_host"),
        "port": Option(int, "smtp_port", at_least=1, at_most=65535),
        "username": Option(str, "smtp_username"),
        "password": Option(str, "smtp_password", env="HELIOGRAPH_SMTP_PASSWORD"),
        "from": Option(str, "smtp_from"),
        "starttls": Option(bool, "smtp_starttls"),
        "tls": Option(bool, "smtp_tls"),  # implicit TLS (port 465)
    },
}


def discover_config_path(explicit: str | None = None,
                         environ: Mapping[str, str] | None = None) -> str | None:
    """The one way every command finds its config: `--config`, else $HELIOGRAPH_CONFIG,
    else ./heliograph.toml if it exists, else none (every key has a default)."""
    env = os.environ if environ is None else environ
    for origin, path in (("--config", explicit), (CONFIG_ENV, env.get(CONFIG_ENV))):
        if path:
            if not os.path.isfile(path):
                raise ConfigError(f"config file {path} (from {origin}) does not exist")
            return os.path.abspath(path)
    if os.path.isfile(DEFAULT_CONFIG_NAME):
        return os.path.abspath(DEFAULT_CONFIG_NAME)
    return None


def _read_toml(config_path: str) -> dict[str, Any]:
    try:
        with open(config_path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read: {exc.strerror or exc}") from None


def load_settings(config_path: str | None = None, environ: Mapping[str, str] | None = None,
                  **overrides) -> Settings:
    """File, then environment, then explicit overrides (CLI flags) — later wins.
    `config_path` is used as given (None: no file); commands find it with
    discover_config_path. Raises ConfigError on any invalid key or value."""
    env = dict(os.environ if environ is None else environ)
    data = _read_toml(config_path) if config_path else {}
    where = config_path or "config"
    file_values = check_tables(data, SECTIONS, where)

    values: dict[str, Any] = {}
    for options in SECTIONS.values():
        for option in options.values():
            value = file_values.get(option.attr)
            if option.env and env.get(option.env):
                value = parse_env_value(option, env[option.env])
            if value is not None:
                values[option.attr] = value
    values["admin_key"] = env.get("HELIOGRAPH_ADMIN_KEY", "")
    values["providers"] = _providers(data.get("providers", {}), where)
    values["env_provider_keys"] = _env_provider_keys(env)
    values["config_path"] = config_path or ""
    options = {o.attr: o for section in SECTIONS.values() for o in section.values()}
    for attr, value in overrides.items():
        if value is not None:
            declared = options.get(attr)
            values[attr] = value if declared is None else check_value(
                declared, value, "--" + attr.replace("_", "-"))
    settings = Settings(**values)
    _check_timezone(settings.alerts_timezone, where)
    return settings


def _check_timezone(name: str, where: str) -> None:
    from heliograph.alerts.windows import time_zone

    try:
        time_zone(name)   # as the alert windows will read it (UTC without the tz database)
    except (KeyError, ValueError):   # zoneinfo.ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"{where}: [alerts] timezone {name!r} is not a known time zone "
                          "(use an IANA name such as 'UTC' or 'Europe/Paris')") from None


def _providers(tables: dict[str, Any], where: str) -> dict[str, ProviderSettings]:
    from heliograph.providers.catalog import BUILTIN_PROVIDERS

    providers: dict[str, ProviderSettings] = {}
    for name, builtin in BUILTIN_PROVIDERS.items():
        providers[name] = ProviderSettings(name=name, type=builtin.type,
                                           base_url=builtin.base_url,
                                           models=builtin.models)
    for name, table in tables.items():
        checked = check_provider_table(name, table, where, builtin=name in providers)
        base = providers.get(name, ProviderSettings(name=name))
        providers[name] = ProviderSettings(
            name=name,
            type=checked.get("type", base.type),
            base_url=checked.get("base_url", base.base_url).rstrip("/"),
            api_key=checked.get("api_key", base.api_key),
            models=tuple(checked.get("models", ())) or base.models,
            headers=dict(checked.get("headers", {})),
            api_version=checked.get("api_version", base.api_version),
            responses_api=checked.get("responses_api", base.responses_api),
            configured=True,
        )
    return providers


def _env_provider_keys(env: dict[str, str]) -> dict[str, str]:
    from heliograph.providers.catalog import BUILTIN_PROVIDERS

    keys = {}
    for name, builtin in BUILTIN_PROVIDERS.items():
        for var in builtin.key_env:
            if env.get(var):
                keys[name] = env[var]
                break
    return keys


# -- the hand-off to worker processes -------------------------------------------------
# uvicorn starts workers as fresh processes that import the app factory; they rebuild
# their settings from the environment the CLI leaves them. Both sides live here.

def export_to_workers(settings: Settings, environ: Any = None) -> None:
    """Leave `settings`' file and storage in the environment, so worker_settings() in a
    worker process (same cwd) sees what the CLI saw."""
    env = os.environ if environ is None else environ
    if settings.config_path:
        env[CONFIG_ENV] = os.path.abspath(settings.config_path)
    else:
        env.pop(CONFIG_ENV, None)
    env["HELIOGRAPH_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["HELIOGRAPH_REDIS_URL"] = settings.redis_url
    env["HELIOGRAPH_JOURNAL_DIR"] = str(settings.resolved_journal_dir().resolve())
    env["HELIOGRAPH_LOG_LEVEL"] = settings.log_level
    env["HELIOGRAPH_ACCESS_LOG"] = "true" if settings.access_log else "false"
    env["HELIOGRAPH_LOG_FORMAT"] = settings.log_format


def worker_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """A worker's settings: the file the CLI exported (if any), then the environment."""
    env = os.environ if environ is None else environ
    return load_settings(env.get(CONFIG_ENV) or None, environ=env)


def mask_url(url: str) -> str:
    """`url` safe to print: the password in `user:password@host` replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    masked = f"{scheme}://{userinfo}{at}{host}{slash}{tail}"
    # libpq also takes the password as a query parameter.
    if "password=" in masked:
        head, _, query = masked.partition("?")
        parts = [p if not p.startswith("password=") else "password=***"
                 for p in query.split("&")]
        masked = head + "?" + "&".join(parts)
    return masked
