"""The server's log output, read from a real gateway's log file: one access line per
proxied request (text, or JSON with [logging] format = "json"), warnings for failed
upstream attempts, `serve --log-level/--no-access-log`, and never a key."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import openai
import pytest
from servers import ADMIN_KEY, Gateway, spawn_logged, wait_port

WRONG_KEY = "sk-hg-not-a-real-key-5f0c1e2d3b4a"


class FlaggedGateway(Gateway):
    """`heliograph serve` with extra command-line flags."""

    def __init__(self, *args, flags: tuple[str, ...] = (), **kwargs):
        self.flags = flags
        super().__init__(*args, **kwargs)

    def start(self) -> None:
        self.proc = spawn_logged(
            [sys.executable, "-m", "heliograph", "serve", "--config", str(self.config_path),
             "--port", str(self.port), "--workers", str(self.workers), *self.flags],
            self.log, env=self.env, cwd=self.workdir, start_new_session=True)
        wait_port(self.port, self.proc, self.log, 30)
        self._wait_healthy(30)


def start(tmp_path, upstream, config: str = "", flags: tuple[str, ...] = ()) -> Gateway:
    return FlaggedGateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}",
                          extra_config=config, flags=flags)


def chat(gw: Gateway, model: str, key: str = ADMIN_KEY) -> str:
    """The Helicone id of one chat request, whatever its outcome."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}])
        return raw.headers["helicone-id"]
    except openai.APIStatusError as error:
        return error.response.headers.get("helicone-id", "")


def log_lines(gw: Gateway, needle: str, timeout: float = 5.0, at_least: int = 1) -> list[str]:
    """The log's lines holding `needle`, waiting a little for them to be written (access
    lines are buffered for a tenth of a second)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in gw.log_text().splitlines() if needle in line]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_text_access_line_warnings_and_no_secret(upstream, tmp_path):
    gw = start(tmp_path, upstream)
    try:
        ok = chat(gw, "gpt-4o-mini")
        failed = chat(gw, "gpt-4o-mini-fake-status-503")
        unreachable = chat(gw, "down-model")
        chat(gw, "gpt-4o-mini", key=WRONG_KEY)  # 401: not logged as a request
        [access] = log_lines(gw, f"id={ok}")
        assert re.search(r"INFO heliograph\.access: POST /v1/chat/completions 200 "
                         r"model=gpt-4o-mini provider=openai \d+\.\dms id=" + ok, access)
        assert log_lines(gw, "503 model=gpt-4o-mini-fake-status-503 provider=openai")
        [warning] = log_lines(gw, f"(record {failed})")
        assert "WARNING heliograph.upstream" in warning and "openai" in warning
        assert " 503 " in warning
        [down] = log_lines(gw, f"(record {unreachable})")
        assert "WARNING heliograph.upstream: upstream down failed" in down
        # Only one access line per request: uvicorn's own access log stays off.
        assert len(log_lines(gw, '"POST /v1/chat/completions', timeout=0)) == 0
    finally:
        gw.stop()
    text = gw.log_text()
    for secret in (ADMIN_KEY, WRONG_KEY, "sk-upstream-openai", "sk-down"):
        assert secret not in text


def test_json_format(upstream, tmp_path):
    gw = start(tmp_path, upstream, config='[logging]\nformat = "json"\n')
    try:
        ok = chat(gw, "gpt-4o-mini")
        failed = chat(gw, "gpt-4o-mini-fake-status-500")
        [access] = [json.loads(line) for line in log_lines(gw, f'"record_id":"{ok}"')]
        warnings = [json.loads(line)
                    for line in log_lines(gw, f'"record_id":"{failed}"', at_least=2)]
    finally:
        gw.stop()
    assert access["level"] == "info" and access["logger"] == "heliograph.access"
    assert (access["method"], access["path"], access["status"], access["model"],
            access["provider"]) == ("POST", "/v1/chat/completions", 200, "gpt-4o-mini",
                                    "openai")
    assert access["latency_ms"] > 0 and access["time"].endswith("Z")
    assert {w["logger"] for w in warnings} == {"heliograph.access", "heliograph.upstream"}
    [warning] = [w for w in warnings if w["level"] == "warning"]
    assert warning["status"] == 500 and warning["provider"] == "openai"


@pytest.mark.parametrize("flags", [("--no-access-log",), ("--log-level", "warning")])
def test_cli_flags_silence_the_access_log_not_the_warnings(upstream, tmp_path, flags):
    gw = start(tmp_path, upstream, flags=flags)
    try:
        ok = chat(gw, "gpt-4o-mini")
        failed = chat(gw, "gpt-4o-mini-fake-status-502")
        assert log_lines(gw, f"(record {failed})")  # the warning is there...
        time.sleep(0.5)  # (past the access lines' buffering, were there any)
        assert not log_lines(gw, f"id={ok}", timeout=0)  # ... the access line is not
    finally:
        gw.stop()


def test_config_level_is_checked(upstream, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[logging]\nlevel = "verbose"\n')
    done = subprocess.run([sys.executable, "-m", "heliograph", "serve", "--check",
                           "--config", str(config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "[logging] level must be one of debug, info, warning, error, critical" \
        in done.stderr
