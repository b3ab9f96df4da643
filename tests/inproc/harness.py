"""The in-process gateway: the ASGI app in the test's own event loop, reached through
httpx's ASGITransport by the real `openai` and `anthropic` SDKs, in front of the real fake
upstream (an aiohttp server on a loopback port, in a background thread).

This is the only module of the tier that touches the gateway's internals:
`heliograph.config.load_settings` and `heliograph.app.build_app` (plus the admin-key
helper the `serve` command uses). Everything else is HTTP in, HTTP out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

try:  # the SDKs' HTTP client: some builds of the SDKs ship httpx renamed httpx2
    import httpx2 as httpx
except ImportError:
    import httpx  # type: ignore[no-redef]

from servers import RECORD_TIMEOUT_S

from heliograph.app import build_app
from heliograph.config import load_settings
from heliograph.keys import display_prefix, ensure_admin_key, generate_key, hash_key
from heliograph.store import open_store

if TYPE_CHECKING:  # imported where used: the SDKs take seconds to import
    import anthropic
    import openai

ADMIN_KEY = "sk-hg-inproc-admin-key-0123456789abcdef"
# A host name only: ASGITransport never resolves it.
GATEWAY_URL = "http://gateway.inproc"

# Provider keys as the gateway would find them in its environment.
PROVIDER_ENV = {"OPENAI_API_KEY": "sk-upstream-openai", "GROQ_API_KEY": "sk-upstream-groq",
                "ANTHROPIC_API_KEY": "sk-upstream-anthropic",
                "GEMINI_API_KEY": "sk-upstream-gemini", "HELIOGRAPH_ADMIN_KEY": ADMIN_KEY}


def write_config(workdir: Path, upstream_url: str, unreachable_url: str) -> Path:
    """Every provider the tests use points at the fake upstream; `down-model` at a port
    nothing listens on (a connection error)."""
    path = workdir / "heliograph.toml"
    path.write_text(f"""
[storage]
database_url = "sqlite:///{workdir / 'heliograph.db'}"
journal_dir = "{workdir / 'journal'}"

[limits]
max_body_mb = 1
upstream_connect_timeout_s = 2
upstream_timeout_s = 5

[providers.openai]
base_url = "{upstream_url}/v1"

[providers.groq]
base_url = "{upstream_url}/v1"

[providers.anthropic]
base_url = "{upstream_url}"

[providers.gemini]
base_url = "{upstream_url}"

[providers.down]
type = "openai"
base_url = "{unreachable_url}/v1"
api_key = "sk-down"
models = ["down-model"]
""")
    return path


class Lifespan:
    """ASGI lifespan driven by hand: ASGITransport only speaks `http`, so startup (which
    starts the journal, its writer and the shared state) and shutdown are sent here."""

    def __init__(self, app) -> None:
        self.app = app
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def _exchange(self, message: str, timeout: float) -> None:
        await self.inbox.put({"type": f"lifespan.{message}"})
        reply = await asyncio.wait_for(self.outbox.get(), timeout)
        if reply["type"] != f"lifespan.{message}.complete":
            raise RuntimeError(f"gateway {message} failed: {reply}")

    async def startup(self, timeout: float = 30) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self._exchange("startup", timeout)

    async def shutdown(self, timeout: float = 30) -> None:
        await self._exchange("shutdown", timeout)
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout)


class InprocGateway:
    """The started app, and clients bound to it."""

    def __init__(self, app, upstream, database_url: str) -> None:
        self.app = app
        self.database_url = database_url
        self.upstream = upstream  # heliograph.fake_upstream.FakeUpstreamServer
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url=GATEWAY_URL, timeout=30)

    def openai(self, api_key: str = ADMIN_KEY) -> openai.AsyncOpenAI:
        import openai
        return openai.AsyncOpenAI(base_url=GATEWAY_URL + "/v1", api_key=api_key,
                                  max_retries=0, http_client=self.http)

    def anthropic(self, api_key: str = ADMIN_KEY) -> anthropic.AsyncAnthropic:
        import anthropic  # ~4 s of CPU: only the tests of the Anthropic front pay it
        return anthropic.AsyncAnthropic(base_url=GATEWAY_URL, api_key=api_key,
                                        max_retries=0, http_client=self.http)

    async def post(self, path: str, body: bytes, headers: dict | None = None,
                   key: str = ADMIN_KEY) -> httpx.Response:
        """Raw bytes in: for bodies an SDK would refuse to send."""
        return await self.http.post(path, content=body, headers={
            "authorization": f"Bearer {key}", "content-type": "application/json",
            **(headers or {})})

    async def api(self, path: str, key: str = ADMIN_KEY) -> tuple[int, dict]:
        """GET on the query API: (status, JSON body)."""
        resp = await self.http.get(path, headers={"authorization": f"Bearer {key}"})
        return resp.status_code, resp.json()

    async def record(self, request_id: str, timeout: float = RECORD_TIMEOUT_S) -> dict:
        """The logged record, once the writer has put it in the store."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.api(f"/api/v1/requests/{request_id}")
            if status == 200:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"record {request_id} never appeared: {status} {body}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_gateway(workdir: Path, upstream, unreachable_url: str
                          ) -> AsyncIterator[InprocGateway]:
    config = write_config(workdir, upstream.url, unreachable_url)
    # An explicit environment: nothing from the test process's (database URLs, keys) leaks.
    settings = load_settings(str(config), environ=dict(PROVIDER_ENV))
    store = open_store(settings.database_url)  # what `heliograph serve` does before serving
    ensure_admin_key(store, settings.admin_key)
    store.close()
    app = build_app(settings)
    lifespan = Lifespan(app)
    await lifespan.startup()
    gateway = InprocGateway(app, upstream, settings.database_url)
    try:
        yield gateway
    finally:
        await gateway.http.aclose()
        await lifespan.shutdown()


def create_key(gateway: InprocGateway, name: str, organization: str = "default",
               admin: bool = False) -> str:
    """A new gateway key, made the way `heliograph keys create` makes it."""
    key = generate_key()
    store = open_store(gateway.database_url)
    try:
        store.create_key(hash_key(key), display_prefix(key), name, organization, admin)
    finally:
        store.close()
    return key
