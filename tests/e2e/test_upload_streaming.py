"""A multipart upload streams through the gateway: relaying 96 MB raises no gateway
process's peak memory by anything near 96 MB (were it held whole, it would, at least
once). The provider here is a sink that counts what it receives, so only the gateway
could hold the upload."""

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from servers import ADMIN_KEY, Gateway

UPLOAD_MB = 96
PIECE = b"Z" * (1024 * 1024)
BOUNDARY = "sinkboundary"


class Sink:
    """An OpenAI-compatible files endpoint that reads the upload and keeps only its size."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def _files(self, request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
        return web.json_response({"id": "file-sink", "object": "file", "bytes": size,
                                  "purpose": "batch", "filename": "x", "created_at": 0,
                                  "status": "processed"})

    async def _start(self) -> None:
        app = web.Application(client_max_size=1 << 40)
        app.router.add_post("/v1/files", self._files)
        app.router.add_post("/v1/audio/transcriptions", self._files)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def __enter__(self) -> "Sink":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def peak_rss_kb(group: int) -> dict[int, int]:
    """VmHWM (peak resident memory) of every process in the gateway's process group."""
    peaks = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != group:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[int(proc.name)] = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return peaks


@pytest.fixture(scope="module")
def sink_gateway(upstream, tmp_path_factory):
    with Sink() as sink:
        gw = Gateway(tmp_path_factory.mktemp("sinkgw"), upstream.url,
                     f"sqlite:///{tmp_path_factory.mktemp('db') / 'h.db'}",
                     extra_config=f'[providers.sink]\ntype = "openai"\n'
                                  f'base_url = "http://127.0.0.1:{sink.port}/v1"\n'
                                  f'api_key = "sk-sink"\n')
        yield gw
        gw.stop()


FILE_PART = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
             f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n')
END = f"\r\n--{BOUNDARY}--\r\n"


def field(name: str, value: str) -> str:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'


@pytest.mark.parametrize("path, head, tail", [
    # files: routed by header, nothing read before the provider is known
    ("/v1/files", field("purpose", "batch") + FILE_PART, END),
    # openai-node's order, the file before the model: held, but on disk
    ("/v1/audio/transcriptions", FILE_PART,
     "\r\n" + field("model", "sink/whisper-1") + f"--{BOUNDARY}--\r\n"),
])
def test_a_large_upload_is_not_held_whole(sink_gateway, path, head, tail):
    head, tail = head.encode(), tail.encode()

    def body():
        yield head
        for _ in range(UPLOAD_MB):
            yield PIECE
        yield tail

    # Warm the worker up first, so its own start-up is not counted.
    httpx.get(sink_gateway.url + "/v1/files/none", timeout=10,
              headers={"authorization": f"Bearer {ADMIN_KEY}",
                       "helicone-target-provider": "sink"})
    group = sink_gateway.proc.pid
    before = peak_rss_kb(group)
    started = time.perf_counter()
    response = httpx.post(
        sink_gateway.url + path, content=body(), timeout=120,
        headers={"authorization": f"Bearer {ADMIN_KEY}", "helicone-target-provider": "sink",
                 "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                 "content-length": str(len(head) + UPLOAD_MB * len(PIECE) + len(tail))})
    assert response.status_code == 200, response.text
    seconds = time.perf_counter() - started
    renamed = len(b"sink/") if b"sink/" in tail else 0
    assert response.json()["bytes"] == len(head) + UPLOAD_MB * len(PIECE) + len(tail) - renamed
    after = peak_rss_kb(group)
    growth_mb = max(after[pid] - before.get(pid, after[pid]) for pid in after) / 1024
    print(f"{path}: {UPLOAD_MB} MB relayed in {seconds:.2f} s "
          f"({UPLOAD_MB / seconds:.0f} MB/s); peak memory growth {growth_mb:.1f} MB")
    assert growth_mb < UPLOAD_MB / 3, f"a gateway process grew by {growth_mb:.0f} MB"
    record = sink_gateway.record(response.headers["helicone-id"])
    assert record["provider"] == "sink"
    assert record["request"]["files"][0]["bytes"] == UPLOAD_MB * len(PIECE)
