"""A worker that serves only proxy traffic never imports the query API or the analytics
read side (issue 15's footprint: ~6 MB a worker), nor the upload form parser, the
dashboard's signing library or the background host's own modules; the first call that
needs one loads it and answers as before."""

import io
import os
import signal
import sys
import time
from pathlib import Path

import anthropic
import openai
from servers import ADMIN_KEY, Gateway, spawn_logged, wait_port, websocket_upgrade
from test_host_imports import host_pid

PROBE = Path(__file__).resolve().parent.parent / "module_probe.py"
# Modules only the query API (and the dashboard) use ...
API_ONLY = ("heliograph.analytics", "heliograph.api.", "heliograph.prometheus")
# ... but for the stored-response endpoints (GET /v1/responses/{id}), loaded at startup.
EAGER = {"heliograph.api.responses", "heliograph.api._common", "heliograph.api._recent"}


class ProbedGateway(Gateway):
    """The gateway's worker app in one process (tests/module_probe.py), which reports its
    sys.modules on SIGUSR1."""

    def start(self) -> None:
        self.modules_file = self.workdir / "modules.txt"
        env = {**self.env, "HELIOGRAPH_CONFIG": str(self.config_path)}
        self.proc = spawn_logged([sys.executable, str(PROBE), str(self.port),
                                  str(self.modules_file)],
                                 self.log, env=env, cwd=self.workdir, start_new_session=True)
        wait_port(self.port, self.proc, self.log, 30)
        self._wait_healthy(30)

    def modules(self) -> set[str]:
        self.modules_file.unlink(missing_ok=True)
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not self.modules_file.exists():
            assert time.monotonic() < deadline, self.log_text()[-2000:]
            time.sleep(0.02)
        return set(self.modules_file.read_text().split("\n"))


# Loaded on first use only (issue 15, session 10: ~1 MB a worker together).
FIRST_USE_ONLY = (
    "python_multipart",                   # the first multipart upload
    "heliograph.formats.openai.multipart",
    "itsdangerous",                       # the first dashboard page (sign-in cookies)
    "heliograph.dashboard.session",
    "heliograph.background.host",         # never: the host is a process of its own
    "argparse",
    "difflib",                            # a config mistake's "did you mean"
)


def first_use_only(modules: set[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == name or m.startswith(name + ".") for name in FIRST_USE_ONLY))


def api_only(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(API_ONLY) and m not in EAGER)


def plain_and_streamed(client: openai.OpenAI, plain: int = 1) -> list[str]:
    """`plain` chat calls and one streamed, each answered; the plain calls' request ids."""
    ids = []
    for _ in range(plain):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}])
        assert raw.parse().choices[0].message.content.startswith("Echo: ")
        ids.append(raw.headers["helicone-id"])
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": "one two three"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return ids


def test_proxy_traffic_loads_no_query_api_module(upstream, tmp_path):
    gw = ProbedGateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        ids = plain_and_streamed(client, plain=3)
        response = client.responses.create(model="gpt-4o-mini", input="hi")
        assert response.output_text
        loaded = gw.modules()
        # The probe sees the worker's modules (the proxy's are there) ...
        assert {"heliograph.app", "heliograph.proxy.pipeline",
                "heliograph.alerts.budgets"} <= loaded
        # ... and none of the query API's.
        assert api_only(loaded) == []

        # The first query API call loads them and answers with the records just made.
        deadline = time.monotonic() + 10
        while True:
            status, body = gw.api("/api/v1/metrics")
            assert status == 200, body
            if body["total"]["requests"] >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert body["total"]["requests"] == 5
        status, record = gw.api(f"/api/v1/requests/{ids[0]}")
        assert status == 200 and record["model"] == "gpt-4o-mini"
        assert "heliograph.analytics.reader" in gw.modules()
        # The lazily loaded table answers 404 and 405 as the eager one did.
        assert gw.api("/api/v1/nothing-here")[0] == 404
        assert gw.api("/v1/request/query")[0] == 405
    finally:
        gw.stop()


def test_the_first_upload_loads_the_form_parser_and_is_relayed(upstream, tmp_path):
    gw = ProbedGateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}])
        assert reply.choices[0].message.content.startswith("Echo: ")
        assert first_use_only(gw.modules()) == []

        # The first call to a form endpoint is not a form: the client's 400, not a 500.
        status, error = gw.api("/v1/audio/transcriptions", method="POST", body={"model": "w"})
        assert status == 400 and error["error"]["code"] == "invalid_content_type", error

        # The worker's first form: read up to its model field, the model renamed for the
        # provider (with_field_value), the rest streamed through, the upload logged.
        picture = io.BytesIO(b"\x89PNG" + b"x" * 300_000)
        picture.name = "fox.png"
        raw = client.images.with_raw_response.edit(
            model="openai/gpt-image-1", image=picture, prompt="add a hat")
        assert raw.parse().data[0].b64_json
        sent = [r for r in upstream.received() if r["path"] == "/v1/images/edits"][-1]
        body = sent["body"].encode("utf-8", "surrogateescape")
        assert b'name="model"\r\n\r\ngpt-image-1\r\n' in body
        record = gw.record(raw.headers["helicone-id"])
        assert record["model"] == "openai/gpt-image-1" and record["model_used"] == "gpt-image-1"
        [described] = record["request"]["files"]
        assert (described["filename"], described["bytes"]) == ("fox.png", 300_004)
        assert "python_multipart" in gw.modules()
    finally:
        gw.stop()


# Loaded by the first request that needs them (issue 15, session 15: ~0.4-0.85 MB a
# worker each): the Anthropic and Responses fronts with their formats, and the store's
# writer-side modules (only the background host's journal writer inserts records).
# (The test gateway configures Anthropic and Gemini providers: their adapters load the
# formats they translate to and from, the Anthropic front's answer side is its own.)
ANTHROPIC_FRONT = ("heliograph.proxy.anthropic_front",
                   "heliograph.formats.anthropic.answer_from_openai",
                   "heliograph.formats.anthropic.stream_from_openai",
                   "heliograph.formats.anthropic.models")
RESPONSES_FRONT = ("heliograph.proxy.responses", "heliograph.providers.responses_via_chat",
                   "heliograph.formats.responses")
STORE_WRITER = ("heliograph.store._rollup_writer", "heliograph.store._webhook_feed",
                "heliograph.store._sqlite_checkpoint")


def loaded_of(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == name or m.startswith(name + ".") for name in names))


def test_openai_traffic_loads_neither_other_front_nor_the_store_writer(upstream, tmp_path):
    gw = ProbedGateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        (request_id,) = plain_and_streamed(client)
        assert [m.id for m in client.models.list()]              # OpenAI's shape
        assert gw.api("/v1/messages/nothing-here")[0] == 404     # an OpenAI-shaped 404
        # The records reached the store (through the journal, not this worker's store).
        assert gw.record(request_id)["status"] == 200
        loaded = gw.modules()
        assert "heliograph.proxy.pipeline" in loaded
        assert loaded_of(loaded, ANTHROPIC_FRONT + RESPONSES_FRONT + STORE_WRITER) == []

        # The first Anthropic call (and an Anthropic-shaped 404) loads its front ...
        status, error = gw.api("/v1/messages", method="GET")
        assert status == 405 and error["type"] == "error", error
        messages = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
        message = messages.messages.create(
            model="gpt-4o-mini", max_tokens=64,
            messages=[{"role": "user", "content": "hello claude"}])
        assert message.content[0].text == "Echo: hello claude"
        with messages.messages.stream(
                model="gpt-4o-mini", max_tokens=64,
                messages=[{"role": "user", "content": "one two"}]) as stream:
            assert stream.get_final_text() == "Echo: one two"
        assert messages.models.list().data[0].type == "model"    # Anthropic's shape
        loaded = gw.modules()
        assert "heliograph.proxy.anthropic_front" in loaded
        assert loaded_of(loaded, RESPONSES_FRONT) == []

        # ... and the first Responses call its own (OpenAI serves the Responses API: sent
        # as it came, the stream's events read by formats/responses/events.py).
        response = client.responses.create(model="gpt-4o-mini", input="hi there")
        assert response.output_text == "Echo: hi there"
        streamed = list(client.responses.create(model="gpt-4o-mini", input="one two",
                                                stream=True))
        assert streamed[-1].type == "response.completed"
        loaded = gw.modules()
        assert {"heliograph.proxy.responses", "heliograph.formats.responses.events"} <= loaded
        assert loaded_of(loaded, STORE_WRITER) == []
    finally:
        gw.stop()


def mapped(pid: int, fragment: str) -> bool:
    """Whether a shared library whose path holds `fragment` is mapped into pid."""
    return fragment in Path(f"/proc/{pid}/maps").read_text()


def test_the_first_websocket_upgrade_loads_the_websocket_library_and_is_refused(
        upstream, tmp_path):
    """uvicorn loads its WebSocket protocol (the websockets package, ~1 MB a worker) on
    the first upgrade request, not at startup: the gateway only ever refuses one."""
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}")  # 1 worker
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}])
        assert reply.choices[0].message.content.startswith("Echo: ")
        # websockets' C part is a shared library of its own, mapped when imported.
        assert not mapped(gw.proc.pid, "websockets/speedups")

        reply_bytes = websocket_upgrade(gw.port, "/v1/chat/completions")
        assert reply_bytes.startswith(b"HTTP/1.1 400"), reply_bytes[:200]
        assert b"WebSocket is not supported" in reply_bytes
        assert "refused a WebSocket upgrade on /v1/chat/completions (400" in gw.log_text()
        assert mapped(gw.proc.pid, "websockets/speedups")
    finally:
        gw.stop()



def test_budgets_in_utc_load_no_time_zone_database(upstream, tmp_path):
    """With the default [alerts] timezone (UTC) a worker checks and counts a calendar
    budget, and the host evaluates it, without zoneinfo (and sysconfig, which it imports
    for the tz database's path): ~0.3 MB RSS each (issue 15, session 15). Its C part is a
    shared library of its own, mapped when imported."""
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}")  # 1 worker
    try:
        status, budget = gw.api("/api/v1/budgets", method="POST", body={
            "name": "Daily", "scope": {"property.Team": "blue"}, "limit_usd": 100,
            "period": "day", "enforce": True})
        assert status == 201, budget
        assert "T00:00:00" in budget["resets_at"]            # the next midnight, UTC
        time.sleep(2.5)  # the worker has loaded it (budgets reload every 2 s)
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello there"}],
            extra_headers={"Helicone-Property-Team": "blue"})
        assert raw.http_response.status_code == 200
        deadline = time.monotonic() + 10
        while gw.api(f"/api/v1/budgets/{budget['id']}")[1]["spend_usd"] <= 0:
            assert time.monotonic() < deadline, "the call's cost was not counted"
            time.sleep(0.1)
        assert not mapped(gw.proc.pid, "_zoneinfo")
        assert not mapped(host_pid(tmp_path / "journal"), "_zoneinfo")
    finally:
        gw.stop()


def test_forked_workers_follow_the_master_without_ctypes(upstream, tmp_path):
    """A worker forked by the supervisor learns that the master died from a pipe only
    the master writes to (its loop watches the read end), not from PR_SET_PDEATHSIG,
    whose prctl call needs ctypes (~0.35 MB RSS a worker; issue 15, session 15)."""
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}", workers=2)
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        for _ in range(4):  # whichever worker answers
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}])
            assert reply.choices[0].message.content.startswith("Echo: ")
        workers = children(gw.proc.pid)
        assert len(workers) == 2, workers
        assert not any(mapped(pid, "_ctypes") for pid in workers)

        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(5)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "workers still running after the master died"
            time.sleep(0.05)
        # Told by the pipe (the once-a-second parent check logs "is gone").
        assert gw.log_text().count("the serve master has exited; stopping this worker") == 2
    finally:
        gw.stop()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_workers_take_the_pure_python_frozen_list_without_the_cpp_runtime(
        upstream, tmp_path):
    """aiohttp's signals are frozenlist's FrozenList, whose C extension links the C++
    runtime (libstdc++, ~1.1 MB RSS a worker; issue 15, session 16). No proxied call uses
    one, so workers (and the host they start) take the pure-Python class: the extension
    is never mapped, and plain and streamed calls are relayed and logged as before."""
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}", workers=2)
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        ids = plain_and_streamed(client, plain=4)  # whichever worker answers
        assert all(gw.record(request_id)["status"] == 200 for request_id in ids)
        workers = children(gw.proc.pid)
        assert len(workers) == 2, workers
        host = host_pid(tmp_path / "journal")
        for pid in [*workers, host]:
            # (The C extension's file name: this test's tmp_path holds "frozenlist" too.)
            assert not mapped(pid, "/_frozenlist.cpython"), (pid, workers, host)
            assert not mapped(pid, "libstdc++"), (pid, workers, host)
    finally:
        gw.stop()
