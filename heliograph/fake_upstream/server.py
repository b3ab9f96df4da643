"""Run the fake provider on a real socket in a background thread (for tests)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from .app import build_app
from .state import STATE_KEY


class FakeUpstreamServer:
    """``with FakeUpstreamServer() as srv: ...`` -- port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **app_options: Any):
        self.host, self.port = host, port
        self.app = build_app(**app_options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fake-upstream")
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> FakeUpstreamServer:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup(), timeout=30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _snapshot(self) -> list[dict]:
        return list(self.app[STATE_KEY].recorded)

    async def _clear(self) -> None:
        self.app[STATE_KEY].recorded.clear()

    def requests(self) -> list[dict]:
        """Requests received so far (same records as GET /_fake/requests)."""
        return self._call(self._snapshot())

    def clear_requests(self) -> None:
        self._call(self._clear())

    def __enter__(self) -> FakeUpstreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
