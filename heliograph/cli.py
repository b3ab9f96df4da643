"""Thin command line: serve, keys, requests, fake-upstream, demo."""

from __future__ import annotations

import os

import click

from heliograph import __version__
from heliograph.config import (
    LOG_LEVELS,
    ConfigError,
    Settings,
    discover_config_path,
    export_to_workers,
    load_settings,
    mask_url,
)


def _settings(config, **overrides) -> Settings:
    """Every command finds its config the same way (discover_config_path)."""
    try:
        return load_settings(discover_config_path(config), **overrides)
    except ConfigError as exc:
        raise click.ClickException(f"config error: {exc}") from None


def _store(settings, must_exist: bool = False, needed_for: str = ""):
    from heliograph.store import open_store
    if must_exist:
        _require_database(settings)
    try:
        return open_store(settings.database_url)
    except Exception as exc:
        # One line: drivers' messages span several (psycopg appends an indented hint).
        reason = " ".join(str(exc).split())
        raise click.ClickException(f"cannot open database {mask_url(settings.database_url)}: "
                                   f"{reason}{needed_for}") from None


def _require_database(settings) -> None:
    """`keys` run from the wrong folder used to create (and list) an empty SQLite file
    there; a missing database file is an error pointing at the config instead."""
    url = settings.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = url[len("sqlite:///"):]
        if not os.path.exists(path):
            where = settings.config_path or "no config file found"
            raise click.ClickException(
                f"no database at {os.path.abspath(path)} ({where}); point at the "
                "gateway's config with --config or HELIOGRAPH_CONFIG, or run from its "
                "folder (`heliograph serve` creates the database)")


def _describe_config(settings) -> str:
    return settings.config_path or "none (defaults; looked for --config, $HELIOGRAPH_CONFIG, " \
        "./heliograph.toml)"


config_option = click.option("--config", "config", type=click.Path(dir_okay=False),
                             default=None, help="TOML config file (else $HELIOGRAPH_CONFIG, "
                             "else ./heliograph.toml)")


@click.group()
@click.version_option(__version__, prog_name="heliograph")
def main():
    """Heliograph: a self-hosted AI gateway."""


@main.command()
@config_option
@click.option("--host", default=None, help="bind address (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default 8787)")
@click.option("--workers", type=int, default=None, help="worker processes (default 1)")
@click.option("--check", is_flag=True, default=False,
              help="validate the config, print a summary and exit (1 if invalid)")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default=None, help="server log level (default info; [logging] level)")
@click.option("--access-log/--no-access-log", default=None,
              help="one line per proxied request (default on; [logging] access_log)")
def serve(config, host, port, workers, check, log_level, access_log):
    """Run the gateway."""
    from heliograph import price_table, server
    from heliograph.keys import ensure_admin_key
    from heliograph.metrics_dir import prepare_multiprocess_dir

    settings = _settings(config, host=host, port=port, workers=workers,
                         log_level=log_level and log_level.lower(), access_log=access_log)
    if check:
        click.echo(f"config OK: {_describe_config(settings)}; database "
                   f"{mask_url(settings.database_url)}; {settings.host}:{settings.port}, "
                   f"{settings.workers} worker{'s' if settings.workers != 1 else ''}; "
                   f"{len(settings.providers)} providers")
        return
    click.echo(f"Heliograph {__version__}: config {_describe_config(settings)}", err=True)
    click.echo(f"database {mask_url(settings.database_url)}", err=True)
    # Not started without it: with no key seen yet every request would be refused, and
    # the schema must be migrated before workers query it.
    store = _store(settings, needed_for="; the gateway needs its database at startup "
                   "(schema migrations, the admin key): start it, or fix [storage] "
                   "database_url, and retry")
    created = ensure_admin_key(store, settings.admin_key)
    store.close()
    if created:
        click.echo("Created an admin key. It is shown only once; keep it safe:")
        click.echo(created)
    # Worker processes rebuild settings from the environment: hand them the same view.
    export_to_workers(settings)
    metrics_dir = prepare_multiprocess_dir(settings)  # before workers import prometheus_client
    price_table.prepare(settings.resolved_journal_dir().resolve())

    def listening(limits) -> None:
        click.echo(f"Heliograph listening on http://{settings.host}:{settings.port} "
                   f"({settings.workers} worker{'s' if settings.workers != 1 else ''}, "
                   f"up to {limits.max_connections} connections each)", err=True)

    try:
        server.run(settings, on_listening=listening,
                   remove_at_exit=(str(metrics_dir),) if metrics_dir else ())
    except server.ListenError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def keys():
    """Manage gateway keys."""


@keys.command("create")
@config_option
@click.option("--name", required=True)
@click.option("--org", default="default", show_default=True)
@click.option("--admin", is_flag=True, default=False)
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="refused (401) after this many days")
@click.option("--allowed-model", "allowed_models", multiple=True,
              help="a model the key may call (repeatable; default any model)")
def keys_create(config, name, org, admin, expires_in_days, allowed_models):
    """Create a key; it is printed alone on the last line, once."""
    import time

    from heliograph.keys import display_prefix, generate_key, hash_key
    from heliograph.records import utc_iso

    expires_at = utc_iso(time.time() + expires_in_days * 86400) if expires_in_days else None
    store = _store(_settings(config), must_exist=True)
    key = generate_key()
    row = store.create_key(hash_key(key), display_prefix(key), name, org, admin, expires_at,
                           tuple(allowed_models) or None)
    store.close()
    limits = (f", expires {expires_at}" if expires_at else "") + \
        (f", models {', '.join(allowed_models)}" if allowed_models else "")
    click.echo(f"Created key {row.id} ({name}, organization {org}"
               f"{', admin' if admin else ''}{limits}). It is shown only once:")
    click.echo(key)


@keys.command("list")
@config_option
@click.option("--org", default=None, help="only this organization")
def keys_list(config, org):
    """List keys (never the secrets)."""
    from heliograph.keys import shown_prefix

    store = _store(_settings(config), must_exist=True)
    rows = store.list_keys(org)
    store.close()
    click.echo(f"{'ID':<18} {'ORG':<14} {'NAME':<24} {'PREFIX':<14} {'ADMIN':<6} "
               f"{'CREATED':<28} {'REVOKED':<28} {'EXPIRES':<28} MODELS")
    for row in rows:
        prefix = shown_prefix(row.prefix)
        models = ",".join(row.allowed_models) if row.allowed_models is not None else "any"
        click.echo(f"{row.id:<18} {row.organization:<14} {row.name:<24} {prefix:<14} "
                   f"{'yes' if row.admin else 'no':<6} {row.created_at:<28} "
                   f"{row.revoked_at or '-':<28} {row.expires_at or '-':<28} {models}")


@keys.command("revoke")
@config_option
@click.argument("key_id")
def keys_revoke(config, key_id):
    """Revoke a key by its ID."""
    store = _store(_settings(config), must_exist=True)
    ok = store.revoke_key(key_id)
    store.close()
    if not ok:
        raise click.ClickException(f"no live key with id {key_id}")
    click.echo(f"Revoked {key_id}")


@main.command("requests")
@config_option
@click.option("--model", default=None)
@click.option("--provider", default=None)
@click.option("--status", type=click.IntRange(100, 599), default=None)
@click.option("--user-id", default=None)
@click.option("--session-id", default=None)
@click.option("--property", "properties", multiple=True, metavar="NAME=VALUE",
              help="a Helicone-Property-<Name> value (repeatable)")
@click.option("--since", default=None, help="ISO 8601, or a duration back: 30s, 15m, 2h, 7d")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--follow", "-f", is_flag=True, default=False,
              help="keep polling every second, printing new requests (Ctrl-C stops)")
@click.option("--url", default=None, help="read a running gateway's /api/v1/requests "
              "instead of the database")
@click.option("--key", default=None, help="gateway key for --url")
@click.option("--org", default="default", show_default=True,
              help="organization (database only; with --url the key's)")
def requests_command(config, model, provider, status, user_id, session_id, properties,
                     since, limit, follow, url, key, org):
    """The latest requests as a table (newest last), filtered like the query API."""
    from heliograph import requests_view as view

    try:
        query = view.build_query(model, provider, status, user_id, session_id, properties,
                                 since)
        source: view.Source
        if url:
            if not key:
                raise click.UsageError("--url needs --key (a gateway key)")
            source = view.HttpSource(url, key)
        else:
            settings = _settings(config)
            _require_database(settings)
            source = view.DatabaseSource(settings.database_url, org)
        try:
            view.show(source, query, limit, follow, click.echo)
        finally:
            source.close()
    except view.SourceError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("fake-upstream")
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=9999)
def fake_upstream(host, port):
    """Run a fake LLM provider (OpenAI, Anthropic, Gemini, Azure formats) for testing apps."""
    from heliograph.fake_upstream import run
    run(host=host, port=port)


@main.command()
@config_option
@click.option("--records", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True)
@click.option("--seed", type=int, default=None,
              help="same seed and --until, same records (ids too: rerunning into the same "
                   "database adds nothing)")
@click.option("--until", default=None, help="end of the history, ISO 8601 (default now)")
@click.option("--org", default="default", show_default=True)
@click.option("--live", is_flag=True, default=False,
              help="send real requests to a running gateway instead")
@click.option("--url", default="http://127.0.0.1:8787", show_default=True)
@click.option("--key", default=None, help="gateway key (--live)")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="requests per second (--live)")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="seconds (--live; default until Ctrl-C)")
@click.option("--every", type=click.IntRange(min=1), default=10, show_default=True,
              help="print a progress line every N requests (--live)")
def demo(config, records, days, seed, until, org, live, url, key, rate, duration, every):
    """Fill the database with realistic history, or (--live) send a trickle of requests."""
    import datetime

    from heliograph.demo import live as live_mode
    from heliograph.demo import load

    if live:
        if not key:
            raise click.UsageError("--live needs --key (a gateway key)")
        live_mode.run(url, key, rate, duration, seed, click.echo, every)
        return
    end = None
    if until:
        try:
            when = datetime.datetime.fromisoformat(until.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            end = when.timestamp()
        except ValueError:
            raise click.BadParameter(f"not ISO 8601: {until!r}", param_hint="--until") \
                from None
    settings = _settings(config)
    try:
        load.run(settings.database_url, records, days, seed, end, org, click.echo)
    except Exception as exc:  # an unreachable or unwritable database: say so, no traceback
        raise click.ClickException(f"demo failed: {exc}") from None
