"""`heliograph requests` through the real CLI: against the gateway's database (its
config) and against its query API (--url/--key), with the query API's filters, and
--follow printing new requests until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from servers import ADMIN_KEY


@pytest.fixture
def user_requests(gateway, openai_client):
    """Three requests by a fresh user: two gpt-4o-mini (one with a property), one gpt-4o."""
    user = "cli-" + uuid.uuid4().hex[:8]
    ids = []
    for model, props in (("gpt-4o-mini", {}), ("gpt-4o", {}),
                         ("gpt-4o-mini", {"Helicone-Property-Team": "search"})):
        raw = openai_client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"Helicone-User-Id": user, **props})
        ids.append(raw.headers["helicone-id"])
    for request_id in ids:
        gateway.record(request_id)
    return user, ids


def _rows(stdout: str) -> list[str]:
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("TIME (UTC)") and "LATENCY MS" in lines[0]
    return lines[1:]


@pytest.mark.parametrize("source", ["database", "api"])
def test_requests_table_with_filters(gateway, user_requests, source):
    user, ids = user_requests
    via = ("--url", gateway.url, "--key", ADMIN_KEY) if source == "api" else ()
    done = gateway.cli("requests", "--user-id", user, *via)
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert len(rows) == 3
    # Oldest first, newest last; each row holds the id prefix, model, provider, status.
    assert [row.split()[-1] for row in rows] == [i[:8] for i in ids]
    assert "gpt-4o-mini" in rows[0] and "openai" in rows[0] and " 200 " in rows[0]
    assert user[:15] in rows[0]

    done = gateway.cli("requests", "--user-id", user, "--model", "gpt-4o", *via)
    assert [row.split()[-1] for row in _rows(done.stdout)] == [ids[1][:8]]
    done = gateway.cli("requests", "--user-id", user, "--property", "Team=search", *via)
    assert [row.split()[-1] for row in _rows(done.stdout)] == [ids[2][:8]]
    done = gateway.cli("requests", "--user-id", user, "--limit", "2", "--since", "1h", *via)
    assert [row.split()[-1] for row in _rows(done.stdout)] == [i[:8] for i in ids[1:]]
    done = gateway.cli("requests", "--user-id", user, "--status", "404", *via)
    assert _rows(done.stdout) == []


def test_bad_filters_and_keys_are_clear_errors(gateway):
    done = gateway.cli("requests", "--since", "yesterday-ish")
    assert done.returncode == 1 and "since" in done.stderr and "Traceback" not in done.stderr
    done = gateway.cli("requests", "--property", "no-equals-sign")
    assert done.returncode == 1 and "Name=value" in done.stderr
    done = gateway.cli("requests", "--url", gateway.url, "--key", "sk-hg-wrong")
    assert done.returncode == 1 and "401" in done.stderr and "Traceback" not in done.stderr


def test_follow_prints_new_requests_until_ctrl_c(gateway, openai_client):
    user = "follow-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        [sys.executable, "-m", "heliograph", "requests", "--follow", "--user-id", user,
         "--config", str(gateway.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gateway.env,
        cwd=gateway.workdir)
    # A readline that never returns would hang the suite: kill the CLI after 60 s.
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout.readline().startswith("TIME (UTC)")
        seen = []
        for _ in range(2):
            raw = openai_client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                extra_headers={"Helicone-User-Id": user})
            request_id = raw.headers["helicone-id"]
            line = proc.stdout.readline()  # within the writer's flush plus one poll
            assert line.split()[-1] == request_id[:8], line
            seen.append(request_id)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
        assert proc.stdout.read() == ""  # nothing printed twice
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_api_source_needs_a_key(gateway):
    done = gateway.cli("requests", "--url", gateway.url)
    assert done.returncode == 2 and "--key" in done.stderr
