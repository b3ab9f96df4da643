"""asgi.client_gone: uvicorn's cycle says it directly; any other server is asked with one
synchronous step of receive()."""

from __future__ import annotations

import asyncio

from heliograph.asgi import client_gone


class Cycle:
    """What uvicorn's RequestResponseCycle offers: receive, bound, and `disconnected`."""

    def __init__(self, disconnected: bool) -> None:
        self.disconnected = disconnected
        self.steps = 0

    async def receive(self) -> dict:
        self.steps += 1
        await asyncio.sleep(3600)
        return {"type": "http.request"}


def test_uvicorns_cycle_is_read_without_a_receive():
    for gone in (True, False):
        cycle = Cycle(gone)
        assert client_gone(cycle.receive) is gone
        assert cycle.steps == 0


def test_other_servers_are_asked_with_one_step():
    async def gone() -> dict:
        return {"type": "http.disconnect"}

    async def present() -> dict:
        await asyncio.sleep(3600)
        return {"type": "http.request"}

    async def main() -> tuple[bool, bool]:
        return client_gone(gone), client_gone(present)

    assert asyncio.run(main()) == (True, False)
