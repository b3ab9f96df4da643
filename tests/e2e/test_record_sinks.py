"""A record sink that raises, in a real gateway on a real socket: the caller still gets
its answer, the record still reaches the database through the journal, and the next
sink still sees it.

The gateway runs in this process (uvicorn in a thread) so the test can hand it sinks
through the seam later features use (`Gateway.sinks`, built in Gateway.build)."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
import urllib.request

import openai
import pytest
import uvicorn
from servers import ADMIN_KEY, free_port

from heliograph.app import build_app
from heliograph.config import load_settings
from heliograph.keys import ensure_admin_key
from heliograph.sinks import RecordSinks
from heliograph.store import open_store


class Raising:
    def accept(self, record) -> None:
        raise RuntimeError("sink bug")

    def close(self) -> None:
        pass


class Collecting:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def accept(self, record) -> None:
        self.ids.append(record["id"])

    def close(self) -> None:
        pass


@pytest.fixture
def in_process_gateway(upstream, tmp_path):
    config = tmp_path / "heliograph.toml"
    config.write_text(f"""
[storage]
database_url = "sqlite:///{tmp_path / 'h.db'}"
journal_dir = "{tmp_path / 'journal'}"

[providers.openai]
base_url = "{upstream.url}/v1"
""")
    settings = load_settings(str(config), environ={"OPENAI_API_KEY": "sk-upstream-openai",
                                                   "HELIOGRAPH_ADMIN_KEY": ADMIN_KEY})
    store = open_store(settings.database_url)
    ensure_admin_key(store, ADMIN_KEY)
    store.close()
    app = build_app(settings)
    collected = Collecting()
    gw = app.gw
    gw.sinks = RecordSinks(gw.sinks.journal, [Raising(), collected])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", collected
    server.should_exit = True
    thread.join(20)
    # Gateway.start tunes the collector for a server process; give pytest its own back.
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)


def stored_record(base_url: str, request_id: str) -> dict:
    deadline = time.monotonic() + 15
    while True:
        req = urllib.request.Request(f"{base_url}/api/v1/requests/{request_id}",
                                     headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            if err.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def test_raising_sink_costs_neither_answer_nor_journal_nor_next_sink(in_process_gateway,
                                                                     caplog):
    base_url, collected = in_process_gateway
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    with caplog.at_level(logging.ERROR, logger="heliograph.sinks"):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
        streamed = "".join(chunk.choices[0].delta.content or ""
                           for chunk in stream if chunk.choices)
    answer = raw.parse()
    assert raw.status_code == 200 and answer.choices[0].message.content
    assert streamed
    request_id = raw.headers["helicone-id"]
    record = stored_record(base_url, request_id)
    assert record["status"] == 200 and record["total_tokens"] == answer.usage.total_tokens
    assert record["cost_known"] is True and record["cost_usd"] > 0
    assert request_id in collected.ids and len(collected.ids) == 2
    assert caplog.text.count("record sink Raising failed") == 2
