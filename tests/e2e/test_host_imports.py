"""The background host loads asyncio (and ssl with it, ~3 MB) only once it has a notice to
send: its alerts job runs every few seconds whether or not any alert or webhook exists,
and the writer, the indexer and retention never need an event loop (issue 15, session 10).
The first notice it sends after starting goes out as before, on every channel.

What the host has loaded is read from outside, in /proc/<pid>/maps: asyncio's and ssl's
C parts are shared libraries of their own (_asyncio, _ssl), mapped when imported."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import openai
import pytest
from alert_receivers import HttpReceiver, SmtpReceiver, alerts_config
from servers import ADMIN_KEY, Gateway, wait

EXPENSIVE = {"x-fake-behavior": "usage-20000-10000"}   # 15 cents on gpt-4o


def host_after_logged_calls(gw: Gateway, calls: int = 20) -> int:
    """The pid of a gateway's background host once it has logged `calls` chat calls."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    ids = [client.chat.completions.with_raw_response.create(
               model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello {i}"}]
           ).headers["helicone-id"] for i in range(calls)]
    for request_id in ids:
        gw.record(request_id)                    # the writer has inserted them all
    return host_pid(gw.workdir / "journal")


def host_pid(journal: Path) -> int:
    """The background host serving this journal folder (its own process)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"heliograph.background" in cmd and str(journal).encode() in cmd:
                return int(entry.name)
        time.sleep(0.1)
    raise AssertionError("no background host")


def mapped(pid: int, library: str) -> bool:
    return f"/{library}." in Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture
def smtp():
    server = SmtpReceiver()
    yield server
    server.stop()


def test_the_host_loads_asyncio_for_its_first_notice_and_sends_it(upstream, smtp, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'heliograph.db'}",
                 extra_config=alerts_config(smtp))
    hook, request_hook = HttpReceiver().start(), HttpReceiver().start()
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        gw.record(raw.headers["helicone-id"])        # the writer has inserted it
        pid = host_pid(tmp_path / "journal")
        time.sleep(1.0)                              # a few alert evaluations
        assert not mapped(pid, "_asyncio") and not mapped(pid, "_ssl")

        tag = uuid.uuid4().hex[:8]
        status, rule = gw.api("/api/v1/alerts", method="POST", body={
            "name": "Spend <daily>", "metric": "cost", "threshold": 0.1, "window": "day",
            "filter": {"property.Test": tag},
            "channels": [{"type": "webhook", "url": hook.url},
                         {"type": "email", "to": ["team@example.com"]}]})
        assert status == 201, rule
        hook.secret = rule["channels"][0]["signing_secret"]
        status, created = gw.api("/api/v1/webhooks", method="POST", body={
            "url": request_hook.url, "filter": {"property.Test": tag}})
        assert status == 201, created
        request_hook.secret = created["signing_secret"]

        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "spend"}],
            extra_headers={"Helicone-Property-Test": tag, **EXPENSIVE})
        [post] = hook.wait_for(1)
        assert post["signed"] and post["body"]["state"] == "firing"
        assert post["body"]["alert"]["id"] == rule["id"]
        [sent] = request_hook.wait_for(1)
        assert sent["signed"]
        assert sent["body"]["request"]["id"] == raw.headers["helicone-id"]
        mail = wait(lambda: smtp.messages[-1] if smtp.messages else None, what="the mail")
        html = mail.get_body(("html",)).get_content()
        assert "<h2>Firing: Spend &lt;daily&gt;</h2>" in html   # escaped on first use
        assert mapped(pid, "_asyncio")
    finally:
        hook.stop()
        request_hook.stop()
        gw.stop()
