"""Fixtures of the in-process tier (see harness.py). One gateway and one fake upstream
for the whole session: every test makes its own data (unique users, properties, counter
keys), so they share them safely, and the tier stays fast."""

from __future__ import annotations

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
    async with running_gateway(tmp_path_factory.mktemp("inproc"), fake_provider,
                               f"http://127.0.0.1:{free_port()}") as gateway:
        yield gateway
