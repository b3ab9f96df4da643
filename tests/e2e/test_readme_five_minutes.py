"""The README's "Five minutes" path, run as written in a fresh folder: its code blocks in
order (the fake provider, the config and `heliograph serve`, the SDK calls, `heliograph
requests` and the query API, feedback and scores, keys over HTTP). Only the two ports
change (9999 and 8787 may be taken on a shared machine), and the blocks run one after the
other where a reader would pause between them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from servers import free_port, wait_port

README = Path(__file__).resolve().parents[2] / "README.md"
REPO = README.parent


def five_minutes_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    section = text[text.index("## Five minutes"):text.index("## Use it")]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for var in ("HELIOGRAPH_DATABASE_URL", "HELIOGRAPH_REDIS_URL", "HELIOGRAPH_JOURNAL_DIR",
                "HELIOGRAPH_CONFIG", "HELIOGRAPH_ADMIN_KEY", "OPENAI_API_KEY",
                "ANTHROPIC_API_KEY"):
        env.pop(var, None)
    return env


def _run(kind: str, code: str, cwd: Path, env: dict) -> str:
    argv = [sys.executable, "-c", code] if kind == "python" else ["bash", "-euc", code]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def _wait_logged(url: str, key: str, count: int) -> None:
    """A reader's pause: the journal writer inserts records within about a second."""
    deadline = time.monotonic() + 15
    while True:
        req = urllib.request.Request(url + "/api/v1/requests?user_id=alice",
                                     headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            if len(json.load(resp)["data"]) >= count:
                return
        assert time.monotonic() < deadline, "the README's requests were never logged"
        time.sleep(0.2)


def test_five_minutes_path_runs_verbatim(tmp_path):
    upstream_port, gateway_port = free_port(), free_port()
    blocks = [(kind, code.replace("9999", str(upstream_port))
               .replace("127.0.0.1:8787", f"127.0.0.1:{gateway_port}"))
              for kind, code in five_minutes_blocks()]
    assert [kind for kind, _ in blocks] == ["bash", "bash", "python", "bash", "bash", "bash"]
    env = _env(tmp_path)
    admin_key = re.search(r"HELIOGRAPH_ADMIN_KEY=(\S+)", blocks[1][1]).group(1)
    serve_line = "heliograph serve --config five-minutes.toml &"
    assert serve_line in blocks[1][1]
    blocks[1] = ("bash", blocks[1][1].replace(
        serve_line, f"heliograph serve --config five-minutes.toml --port {gateway_port} &"))
    processes = []
    try:
        log = open(tmp_path / "upstream.log", "w")
        processes.append(subprocess.Popen(["bash", "-c", blocks[0][1]], cwd=tmp_path, env=env,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        wait_port(upstream_port, processes[0], tmp_path / "upstream.log")
        # Terminal 2: the config and the gateway, in the background as the block says.
        gateway_log = open(tmp_path / "gateway.log", "w")
        processes.append(subprocess.Popen(["bash", "-euc", blocks[1][1] + "\nwait"],
                                          cwd=tmp_path, env=env, stdout=gateway_log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        wait_port(gateway_port, processes[1], tmp_path / "gateway.log", 30)
        url = f"http://127.0.0.1:{gateway_port}"
        env = dict(env, HELIOGRAPH_ADMIN_KEY=admin_key)  # exported in terminal 2

        said = _run(*blocks[2], tmp_path, env)
        assert said.strip(), "the SDK calls printed no answer"
        _wait_logged(url, admin_key, 2)

        logged = _run(*blocks[3], tmp_path, env)
        assert "gpt-4o-mini" in logged and "claude-3-5-haiku-latest" in logged
        assert "anthropic" in logged and '"model"' in logged
        assert "0c6e2a58" in logged  # the fixed request id, in the table and the API

        rated = _run(*blocks[4], tmp_path, env)
        assert rated.count('"ok":true') == 2, rated

        keys = _run(*blocks[5], tmp_path, env)
        # Two JSON answers back to back (curl adds no newline): the key, then the list.
        created, end = json.JSONDecoder().raw_decode(keys)
        listing = json.loads(keys[end:])
        assert created["key"].startswith("sk-hg-")
        assert created["allowed_models"] == ["gpt-4o-mini"] and created["expires_at"]
        assert [k["name"] for k in listing["data"]][-1] == "billing-service"
        assert created["key"] not in json.dumps(listing)  # the list: no secret
    finally:
        for proc in reversed(processes):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
