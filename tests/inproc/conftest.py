"""Fixtures of the in-process tier (see harness.py). One gateway and one fake upstream
for the whole session: every test makes its own data (unique users, properties, counter
keys), so they share them safely, and the tier stays fast."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from harness import running_gateway
from servers import free_port

from heliograph.fake_upstream import FakeUpstreamServer


@pytest.fixture(scope="session")
def anyio_backend():
    # Session-wide: the gateway is started once, in the one event loop every test uses.
    return "asyncio"


@pytest.fixture(scope="session")
def fake_provider():
    """The fake upstream in a background thread (not a process: this tier is not e2e)."""
    with FakeUpstreamServer() as server:
        yield server


@pytest.fixture(scope="session")
async def inproc(anyio_backend, fake_provider, tmp_path_factory):
    _tolerate_other_loops_garbage(asyncio.get_running_loop())
    async with running_gateway(tmp_path_factory.mktemp("inproc"), fake_provider,
                               f"http://127.0.0.1:{free_port()}") as gateway:
        yield gateway


def _tolerate_other_loops_garbage(loop: asyncio.AbstractEventLoop) -> None:
    """This loop lives for the whole session, beside tests that run their own loops
    (`asyncio.run`) in the same process. An SDK client such a test leaves open is
    garbage-collected whenever the collector runs, maybe while this loop runs, and then
    closes itself as a task here (openai's `__del__`): its connections belong to a loop
    that is closed, and the task fails with "Event loop is closed". anyio raises every
    failed task into the next test or fixture, so one leak elsewhere errored every test of
    this tier left on that process. That error cannot come from this loop (it is never
    closed while tests run): it becomes a warning; everything else still fails the test."""
    anyio_handler = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            warnings.warn(f"another test's client closed on a closed loop: {context!r}",
                          ResourceWarning, stacklevel=1)
            return
        if anyio_handler is not None:
            anyio_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
