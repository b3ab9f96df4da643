"""Thin command line: serve, keys, fake-upstream."""

from __future__ import annotations

import os

import click

from heliograph.config import load_settings


def _settings(config, **overrides):
    try:
        return load_settings(config, **overrides)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load config: {exc}") from None


def _store(settings):
    from heliograph.store import open_store
    try:
        return open_store(settings.database_url)
    except Exception as exc:
        raise click.ClickException(f"cannot open database {settings.database_url}: {exc}") \
            from None


config_option = click.option("--config", "config", type=click.Path(dir_okay=False),
                             default=None, help="TOML config file")


@click.group()
def main():
    """Heliograph: a self-hosted AI gateway."""


@main.command()
@config_option
@click.option("--host", default=None, help="bind address (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default 8787)")
@click.option("--workers", type=int, default=None, help="worker processes (default 1)")
def serve(config, host, port, workers):
    """Run the gateway."""
    import uvicorn

    from heliograph.keys import ensure_admin_key

    settings = _settings(config, host=host, port=port, workers=workers)
    store = _store(settings)
    created = ensure_admin_key(store, settings.admin_key)
    store.close()
    if created:
        click.echo("Created an admin key. It is shown only once; keep it safe:")
        click.echo(created)
    # Worker processes rebuild settings from the environment: hand them the same view.
    if config:
        os.environ["HELIOGRAPH_CONFIG"] = os.path.abspath(config)
    os.environ["HELIOGRAPH_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        os.environ["HELIOGRAPH_REDIS_URL"] = settings.redis_url
    os.environ["HELIOGRAPH_JOURNAL_DIR"] = str(settings.resolved_journal_dir().resolve())
    click.echo(f"Heliograph listening on http://{settings.host}:{settings.port} "
               f"({settings.workers} worker{'s' if settings.workers != 1 else ''}, "
               f"database {settings.database_url})", err=True)
    uvicorn.run("heliograph.app:create_app", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level="warning",
                access_log=False, loop="auto", http="auto", timeout_graceful_shutdown=10)


@main.group()
def keys():
    """Manage gateway keys."""


@keys.command("create")
@config_option
@click.option("--name", required=True)
@click.option("--org", default="default", show_default=True)
@click.option("--admin", is_flag=True, default=False)
def keys_create(config, name, org, admin):
    """Create a key; it is printed alone on the last line, once."""
    from heliograph.keys import display_prefix, generate_key, hash_key

    store = _store(_settings(config))
    key = generate_key()
    row = store.create_key(hash_key(key), display_prefix(key), name, org, admin)
    store.close()
    click.echo(f"Created key {row.id} ({name}, organization {org}"
               f"{', admin' if admin else ''}). It is shown only once:")
    click.echo(key)


@keys.command("list")
@config_option
@click.option("--org", default=None, help="only this organization")
def keys_list(config, org):
    """List keys (never the secrets)."""
    store = _store(_settings(config))
    rows = store.list_keys(org)
    store.close()
    click.echo(f"{'ID':<18} {'ORG':<14} {'NAME':<24} {'PREFIX':<14} {'ADMIN':<6} "
               f"{'CREATED':<28} REVOKED")
    for row in rows:
        click.echo(f"{row.id:<18} {row.organization:<14} {row.name:<24} {row.prefix:<14} "
                   f"{'yes' if row.admin else 'no':<6} {row.created_at:<28} "
                   f"{row.revoked_at or '-'}")


@keys.command("revoke")
@config_option
@click.argument("key_id")
def keys_revoke(config, key_id):
    """Revoke a key by its ID."""
    store = _store(_settings(config))
    ok = store.revoke_key(key_id)
    store.close()
    if not ok:
        raise click.ClickException(f"no live key with id {key_id}")
    click.echo(f"Revoked {key_id}")


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
