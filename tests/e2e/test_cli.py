"""`heliograph serve` first start and `heliograph keys`; config discovery, `serve --check`,
`--version`, what `serve` reports and when, through the real `heliograph` command."""

import os
import shutil
import subprocess
import sys
import time

import openai
import pytest
from servers import free_port, postgres_database, spawn_logged, wait_port

# The console script (it imports heliograph from PYTHONPATH); `python -m` if absent.
HELIOGRAPH = [shutil.which("heliograph") or sys.executable, *([] if shutil.which("heliograph")
                                                              else ["-m", "heliograph"])]


def heliograph(*args: str, cwd, env: dict | None = None, timeout: float = 60):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("HELIOGRAPH_") or k.startswith("HELIOGRAPH_TEST_")}
    return subprocess.run([*HELIOGRAPH, *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, **(env or {})}, timeout=timeout)


def test_first_start_creates_and_prints_an_admin_key_once(tmp_path, upstream):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "OPENAI_API_KEY": "sk-x", "HOME": str(tmp_path)}
    config = tmp_path / "h.toml"
    config.write_text(f'[providers.openai]\nbase_url = "{upstream.url}/v1"\n')

    def start():
        log = tmp_path / "serve.log"
        log.unlink(missing_ok=True)
        proc = spawn_logged([sys.executable, "-m", "heliograph", "serve", "--config",
                             str(config), "--port", str(port)], log, cwd=tmp_path, env=env)
        wait_port(port, proc, log, 30)
        proc.terminate()
        proc.wait(15)
        return log.read_text()

    first = start()
    key = [line for line in first.splitlines() if line.startswith("sk-hg-")]
    assert len(key) == 1, first
    assert (tmp_path / "heliograph.db").exists()  # the default SQLite file, in the cwd
    second = start()
    assert not [line for line in second.splitlines() if line.startswith("sk-hg-")]


def test_keys_create_list_revoke(gateway):
    created = gateway.cli("keys", "create", "--name", "ci-bot", "--org", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-hg-")
    listed = gateway.cli("keys", "list")
    line = [row for row in listed.stdout.splitlines() if "ci-bot" in row][0]
    assert "acme" in line and key not in listed.stdout  # stored hashed, never shown again
    key_id = line.split()[0]
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini",
                                   messages=[{"role": "user", "content": "hi"}])
    revoked = gateway.cli("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert gateway.cli("keys", "revoke", key_id).returncode != 0
    # A process trusts a looked-up key for KEY_CACHE_TTL_S; after that the revocation holds.
    deadline = time.monotonic() + 15
    while True:
        try:
            client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.5)


def test_fake_upstream_command_serves_the_openai_format(tmp_path):
    import openai as sdk

    port = free_port()
    log = tmp_path / "fake-upstream.log"
    proc = spawn_logged([sys.executable, "-m", "heliograph", "fake-upstream", "--port",
                         str(port)], log)
    try:
        wait_port(port, proc, log, 20)
        client = sdk.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x")
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
        assert reply.choices[0].message.content == "Echo: ping" and reply.usage.total_tokens
    finally:
        proc.terminate()
        proc.wait(10)


def test_version_is_printed(tmp_path):
    result = heliograph("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "heliograph, version 0.1.0"


def test_serve_check_accepts_a_valid_config_and_refuses_a_bad_one(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[server]\nport = 9123\nworkers = 2\n'
                    '[storage]\ndatabase_url = "postgresql://gw:hunter2@db.internal/gw"\n')
    result = heliograph("serve", "--check", "--config", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"config OK: {good}")
    assert "127.0.0.1:9123, 2 workers" in lines[0]
    assert "gw:***@db.internal" in lines[0] and "hunter2" not in result.stdout
    assert not (tmp_path / "heliograph.db").exists()  # checking touches no database

    bad = tmp_path / "bad.toml"
    bad.write_text('[provider.openai]\nbase_url = "http://127.0.0.1:9/v1"\n')
    result = heliograph("serve", "--check", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert str(bad) in result.stderr and "did you mean [providers.openai]" in result.stderr
    # serve itself refuses the same file before touching anything.
    result = heliograph("serve", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 1 and "did you mean [providers.openai]" in result.stderr


def test_every_command_discovers_the_config_the_same_way(gateway, tmp_path):
    """--config, else HELIOGRAPH_CONFIG, else ./heliograph.toml; `keys list` from another
    folder used to create and list an empty database there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    admin_row = "admin (HELIOGRAPH_ADMIN_KEY)"
    found = heliograph("keys", "list", cwd=elsewhere,
                       env={"HELIOGRAPH_CONFIG": str(gateway.config_path)})
    assert found.returncode == 0 and admin_row in found.stdout, found.stderr
    in_its_folder = heliograph("keys", "list", cwd=gateway.workdir)  # ./heliograph.toml
    assert in_its_folder.returncode == 0 and admin_row in in_its_folder.stdout
    check = heliograph("serve", "--check", cwd=gateway.workdir)
    assert check.returncode == 0 and str(gateway.config_path) in check.stdout

    lost = heliograph("keys", "list", cwd=elsewhere)
    assert lost.returncode == 1 and "no database at" in lost.stderr
    assert "HELIOGRAPH_CONFIG" in lost.stderr
    assert not (elsewhere / "heliograph.db").exists()
    missing = heliograph("keys", "list", cwd=elsewhere,
                         env={"HELIOGRAPH_CONFIG": str(elsewhere / "nope.toml")})
    assert missing.returncode == 1 and "nope.toml (from HELIOGRAPH_CONFIG)" in missing.stderr


def _database_with_password(tmp_path):
    """A database URL that carries a password (PostgreSQL accepts it under trust auth)."""
    base = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
    if not base:
        return f"sqlite:///{tmp_path / 'gw.db'}", None, lambda: None
    url, drop = postgres_database(base)
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:hunter2-secret@{host}", "hunter2-secret", drop


def test_serve_reports_config_and_masked_database_and_listens_only_once_bound(tmp_path,
                                                                              upstream):
    url, password, drop = _database_with_password(tmp_path)
    port = free_port()
    config = tmp_path / "heliograph.toml"
    config.write_text(f'[server]\nport = {port}\n[storage]\ndatabase_url = "{url}"\n'
                      f'[providers.openai]\nbase_url = "{upstream.url}/v1"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOGRAPH_")}
    env["HELIOGRAPH_ADMIN_KEY"] = "sk-hg-cli-test-admin-key-0123456789"
    log = tmp_path / "serve.log"
    proc = spawn_logged([*HELIOGRAPH, "serve"], log, cwd=tmp_path, env=env)
    try:
        wait_port(port, proc, log, 30)
        deadline = time.monotonic() + 10
        while "listening on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = log.read_text()
        assert f"config {config}" in text and "listening on" in text
        if password:
            assert password not in text and ":***@" in text
        # A second gateway on the same port: a one-line error, never "listening on".
        second = heliograph("serve", "--port", str(port), cwd=tmp_path, timeout=30,
                            env={"HELIOGRAPH_ADMIN_KEY": env["HELIOGRAPH_ADMIN_KEY"]})
        assert second.returncode != 0
        assert "listening on" not in second.stdout + second.stderr
        errors = [line for line in second.stderr.splitlines() if line.startswith("Error")]
        assert errors == [f"Error: cannot listen on 127.0.0.1:{port}: address already in use"]
        assert "Traceback" not in second.stderr
    finally:
        proc.terminate()
        proc.wait(15)
        drop()


def test_keys_list_never_shows_a_short_key_whole(tmp_path):
    short = "hg-adm1n-key"  # 12 characters: it used to be listed whole as its "prefix"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOGRAPH_")}
    env["HELIOGRAPH_ADMIN_KEY"] = short
    log = tmp_path / "serve.log"
    proc = spawn_logged([*HELIOGRAPH, "serve", "--port", str(port)], log, cwd=tmp_path,
                        env=env)
    try:
        wait_port(port, proc, log, 30)
    finally:
        proc.terminate()
        proc.wait(15)
    listed = heliograph("keys", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = [line for line in listed.stdout.splitlines() if "HELIOGRAPH_ADMIN_KEY" in line][0]
    assert short[:5] not in row and "hg-a…" in row


@pytest.mark.parametrize("flag", ["--port=70000", "--workers=0"])
def test_serve_refuses_out_of_range_flags(tmp_path, flag):
    result = heliograph("serve", flag, cwd=tmp_path)
    assert result.returncode == 1 and "config error" in result.stderr
    assert not (tmp_path / "heliograph.db").exists()
