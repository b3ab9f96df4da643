"""Strict config: every section and key declared, typed and bounded; one discovery order."""

from dataclasses import fields

import pytest

from heliograph.config import (
    SECTIONS,
    ConfigError,
    Settings,
    discover_config_path,
    export_to_workers,
    load_settings,
    mask_url,
    worker_settings,
)


def load(tmp_path, text, environ=None, **overrides):
    path = tmp_path / "h.toml"
    path.write_text(text)
    return load_settings(str(path), environ=environ or {}, **overrides)


def error(tmp_path, text, environ=None, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environ, **overrides)
    message = str(info.value)
    assert str(tmp_path / "h.toml") in message or "environment" in message or "--" in message
    return message


def test_misspelt_provider_section_is_refused_with_the_right_name(tmp_path):
    # It used to load, leaving providers.openai at the real OpenAI URL.
    message = error(tmp_path, '[provider.openai]\nbase_url = "http://127.0.0.1:9/v1"\n')
    assert "[provider.openai]" in message and "did you mean [providers.openai]" in message


def test_unknown_key_names_the_closest_valid_one(tmp_path):
    message = error(tmp_path, "[limits]\nmax_body_mbs = 3\n")
    assert "'max_body_mbs' in [limits]" in message and "did you mean max_body_mb" in message
    message = error(tmp_path, '[providers.openai]\nbase-url = "http://x"\n')
    assert "[providers.openai]" in message and "did you mean base_url" in message


def test_unknown_section_without_a_close_name_lists_the_valid_ones(tmp_path):
    message = error(tmp_path, "[zzz]\na = 1\n")
    assert "[zzz]" in message and "server" in message and "providers" in message


def test_a_section_key_written_at_the_top_level_points_at_its_section(tmp_path):
    assert "[server] port" in error(tmp_path, "port = 9000\n")


@pytest.mark.parametrize("text, expected", [
    ('[limits]\nratelimit_fail_open = "false"\n',
     "ratelimit_fail_open must be true or false, not the string 'false'"),
    ('[server]\nport = "8080"\n', "port must be a whole number, not the string '8080'"),
    ("[server]\nworkers = 1.5\n", "workers must be a whole number, not the number 1.5"),
    ("[server]\nworkers = true\n", "workers must be a whole number, not the boolean true"),
    ("[server]\nport = 70000\n", "port must be at most 65535"),
    ("[limits]\nmax_body_mb = -1\n", "max_body_mb must be greater than 0"),
    ("[limits]\nupstream_timeout_s = 0\n", "upstream_timeout_s must be greater than 0"),
    ("[limits]\nupstream_timeout_s = inf\n", "must be a finite number"),
    ("[server]\nmax_connections = 0\n", "max_connections must be at least 1"),
    ('[storage]\ndatabase_url = "mysql://db"\n', "database_url must start with sqlite:"),
    ('[storage]\nredis_url = "127.0.0.1:6379"\n', "redis_url must start with redis://"),
    ("[storage]\ndatabase_url = 5\n", "database_url must be a string, not the number 5"),
    ('server = "x"\n', "[server] must be a table"),
    ('[providers.openai]\nbase_url = "api.openai.com"\n', "must start with http://"),
    ('[providers.openai]\nmodels = "gpt-4o"\n', "models must be an array of strings"),
    ("[providers.openai]\nmodels = [1]\n", "models must hold only strings"),
    ('[providers.openai]\nheaders = { "x" = 1 }\n', "headers must hold only strings"),
    ('[providers.x]\ntype = "cohere"\nbase_url = "http://x"\n', "type must be one of openai"),
    ('[providers.mine]\ntype = "openai"\n', "[providers.mine] needs a base_url"),
    ('[providers.vllm]\nresponses_api = "yes"\n',
     "responses_api must be true or false, not the string 'yes'"),
    ("[limits\n", "not valid TOML"),
])
def test_wrong_values_name_the_file_and_key(tmp_path, text, expected):
    assert expected in error(tmp_path, text)


def test_valid_file_is_typed(tmp_path):
    settings = load(tmp_path, """
[server]
port = 9000
max_header_kb = 32
header_timeout_s = 3
[limits]
max_body_mb = 2
ratelimit_fail_open = false
[providers.local]
base_url = "http://127.0.0.1:11434/v1/"
models = ["llama3.2"]
headers = { "x-title" = "t" }
""")
    assert (settings.port, settings.max_header_bytes, settings.header_timeout_s) == \
        (9000, 32 * 1024, 3.0)
    assert settings.max_body_mb == 2.0 and isinstance(settings.max_body_mb, float)
    assert settings.ratelimit_fail_open is False
    local = settings.providers["local"]
    assert (local.type, local.base_url, local.models) == \
        ("openai", "http://127.0.0.1:11434/v1", ("llama3.2",))
    assert settings.providers["openai"].base_url == "https://api.openai.com/v1"


def test_environment_overrides_are_checked_too(tmp_path):
    settings = load(tmp_path, "", {"HELIOGRAPH_DATABASE_URL": "postgresql://u@h/db",
                                   "HELIOGRAPH_REDIS_URL": "redis://127.0.0.1:6379/1"})
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.redis_url == "redis://127.0.0.1:6379/1"
    message = error(tmp_path, "", {"HELIOGRAPH_DATABASE_URL": "heliograph.db"})
    assert "HELIOGRAPH_DATABASE_URL" in message


def test_command_line_overrides_are_checked(tmp_path):
    assert load(tmp_path, "", port=9001, host=None).port == 9001
    assert "--port must be at most 65535" in error(tmp_path, "", port=70000)
    assert "--workers must be at least 1" in error(tmp_path, "", workers=0)


def test_every_declared_key_sets_a_settings_field_with_a_default():
    names = {f.name for f in fields(Settings)}
    attrs = [option.attr for options in SECTIONS.values() for option in options.values()]
    assert set(attrs) <= names and len(attrs) == len(set(attrs))
    Settings()  # every field has a default


def test_discovery_order_flag_then_environment_then_working_directory(tmp_path, monkeypatch):
    flag, env_file, local = (tmp_path / "flag.toml", tmp_path / "env.toml",
                             tmp_path / "heliograph.toml")
    for path in (flag, env_file):
        path.write_text("")
    monkeypatch.chdir(tmp_path)
    environ = {"HELIOGRAPH_CONFIG": str(env_file)}
    assert discover_config_path(None, {}) is None  # nothing there: defaults
    local.write_text("")
    assert discover_config_path(None, {}) == str(local)
    assert discover_config_path(None, environ) == str(env_file)
    assert discover_config_path(str(flag), environ) == str(flag)
    with pytest.raises(ConfigError, match="missing.toml .from HELIOGRAPH_CONFIG. does not"):
        discover_config_path(None, {"HELIOGRAPH_CONFIG": "missing.toml"})
    with pytest.raises(ConfigError, match="from --config"):
        discover_config_path("missing.toml", environ)


def test_workers_see_what_the_command_saw(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "h.toml"
    config.write_text('[storage]\ndatabase_url = "sqlite:///data/gw.db"\n'
                      "[limits]\nmax_body_mb = 3\n")
    settings = load_settings(str(config), environ={})
    environ: dict[str, str] = {}
    export_to_workers(settings, environ)
    seen = worker_settings(environ)
    assert seen.database_url == "sqlite:///data/gw.db" and seen.max_body_mb == 3
    assert seen.resolved_journal_dir() == (tmp_path / "data" / "gw.db.journal")


@pytest.mark.parametrize("url, masked", [
    ("postgresql://app:s3cret@db:5432/gw", "postgresql://app:***@db:5432/gw"),
    ("postgresql://app@db/gw?password=s3cret&sslmode=require",
     "postgresql://app@db/gw?password=***&sslmode=require"),
    ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("sqlite:///heliograph.db", "sqlite:///heliograph.db"),
])
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked


def test_cache_scope_and_allowed_target_urls(tmp_path):
    settings = load(tmp_path, '[cache]\nscope = "organization"\n\n[proxy]\n'
                              'allowed_target_urls = ["https://llm.internal", "http://10.0.0.5/v1"]\n')
    assert settings.cache_scope == "organization"
    assert settings.allowed_target_urls == ("https://llm.internal", "http://10.0.0.5/v1")
    assert load(tmp_path, "").cache_scope == "key"
    assert load(tmp_path, "").allowed_target_urls == ()
    assert "must be one of key, organization" in error(tmp_path, '[cache]\nscope = "everyone"\n')
    assert "must be an array of strings" in error(
        tmp_path, '[proxy]\nallowed_target_urls = "https://llm.internal"\n')
    assert "allowed_target_urls[1] must start with http:// or https://" in error(
        tmp_path, '[proxy]\nallowed_target_urls = ["https://a", "file:///etc"]\n')
