"""500 concurrent streaming chat requests on a gateway with 2 workers, the fake upstream
sending each chunk slowly: while all of them are open, /healthz and a plain chat request
are still answered promptly, and afterwards every stream has ended with [DONE] and is
logged."""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import uuid

import aiohttp
from servers import ADMIN_KEY, FakeUpstream, Gateway

STREAMS = 500
CHUNK_DELAY_MS = 400
WORDS = 40  # ~42 chunks: each stream lasts ~17 s, so all 500 are open at once even
# when opening them is slow on a loaded machine
# Generous for a loaded 2-core CI machine; an idle one answers in milliseconds.
MAX_PROBE_S = 2.0
MIN_PROBES = 5


class PatientGateway(Gateway):
    """The test gateway with 30 s upstream connect and read timeouts instead of 2 and 3 s:
    on a loaded machine one fake upstream process may take seconds to accept and start
    500 streams (its listen queue overflows and the kernel retries a dropped connect after
    1 s, then 3 s), and a 504 for that would measure the fake, not the gateway."""

    def start(self) -> None:
        config = self.config_path.read_text()
        patient = (config.replace("upstream_timeout_s = 3\n", "upstream_timeout_s = 30\n")
                   .replace("upstream_connect_timeout_s = 2\n",
                            "upstream_connect_timeout_s = 30\n"))
        assert patient.count("= 30\n") == 2, "the test config's timeouts changed"
        self.config_path.write_text(patient)
        super().start()


def _lift_descriptor_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def _stream(session, url, run, n, opened: asyncio.Event, state: dict) -> str:
    text = " ".join(f"w{n}_{i}" for i in range(WORDS))
    async with session.post(url + "/v1/chat/completions", json={
            "model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": text}]},
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Helicone-Property-Run": run,
                     "x-fake-behavior": f"chunk-delay-{CHUNK_DELAY_MS}"}) as resp:
        assert resp.status == 200, await resp.text()
        request_id = resp.headers["helicone-id"]
        state["open"] += 1
        if state["open"] == STREAMS:
            opened.set()
        lines = []
        async for line in resp.content:
            lines.append(line)
        state["open"] -= 1
        state["done"] += 1
    data = [line for line in lines if line.startswith(b"data: ")]
    assert data[-1].strip() == b"data: [DONE]", data[-3:]
    return request_id


async def _timed(session, method, url, **kwargs) -> float:
    started = time.monotonic()
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.read()
        assert resp.status == 200, body
    return time.monotonic() - started


async def _under_load(gw: Gateway, run: str):
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        opened = asyncio.Event()
        state = {"open": 0, "done": 0}
        streams = [asyncio.ensure_future(_stream(session, gw.url, run, n, opened, state))
                   for n in range(STREAMS)]
        waiting = asyncio.ensure_future(opened.wait())
        done, _ = await asyncio.wait([waiting, *streams], timeout=120,
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in done - {waiting}:
            task.result()  # a stream that failed says why
        assert waiting in done, (f"only {state['open']} of {STREAMS} streams open at once "
                                 f"({state['done']} done)")
        open_at_probe_start = state["open"]
        healthz, chats = [], []
        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}]}
        while state["done"] == 0 or len(healthz) < MIN_PROBES:
            healthz.append(await _timed(session, "GET", gw.url + "/healthz"))
            chats.append(await _timed(session, "POST", gw.url + "/v1/chat/completions",
                                      json=chat,
                                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}))
            await asyncio.sleep(0.1)
        ids = await asyncio.gather(*streams)
    return ids, healthz, chats, open_at_probe_start


def test_500_concurrent_streams_leave_probes_answered(tmp_path):
    _lift_descriptor_limit(4 * STREAMS)  # inherited by the fake upstream too
    upstream = FakeUpstream()  # its own: the session's one serves other tests' records
    gw = PatientGateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}",
                        workers=2)
    try:
        run = uuid.uuid4().hex
        ids, healthz, chats, open_at_once = asyncio.run(_under_load(gw, run))
        assert len(set(ids)) == STREAMS
        stats = {name: (statistics.median(t), max(t)) for name, t in
                 (("healthz", healthz), ("chat", chats))}
        print(f"{open_at_once} streams open: " + ", ".join(
            f"{name} p50 {p50 * 1000:.0f} ms max {worst * 1000:.0f} ms ({len(t)} probes)"
            for (name, (p50, worst)), t in zip(stats.items(), (healthz, chats))))
        for name, (_, worst) in stats.items():
            assert worst < MAX_PROBE_S, f"{name} took {worst:.2f} s under {STREAMS} streams"

        deadline = time.monotonic() + 60  # every stream logged
        while True:
            status, body = gw.api(f"/api/v1/requests?property.Run={run}&limit=1000")
            assert status == 200, body
            logged = {r["id"] for r in body["data"]}
            if logged >= set(ids):
                break
            assert time.monotonic() < deadline, f"{len(logged)} of {STREAMS} logged"
            time.sleep(0.5)
        assert all(r["status"] == 200 and r["ttft_ms"] is not None for r in body["data"]), \
            body["data"][0]
    finally:
        gw.stop()
        upstream.stop()
