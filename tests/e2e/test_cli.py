"""`heliograph serve` first start and `heliograph keys`."""

import os
import sys
import time

import openai
from servers import free_port, spawn_logged, wait_port


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
