"""A fake LLM provider: a real HTTP server speaking the wire formats of OpenAI (chat,
embeddings, Responses), Azure OpenAI, Anthropic (Messages) and Google Gemini, all on one
port (see each ``*_api`` module for its routes).

    from heliograph.fake_upstream import build_app, run, FakeUpstreamServer
    run("127.0.0.1", 9999)                   # blocking
    with FakeUpstreamServer() as srv:        # background thread, free port
        srv.base_url                         # "http://127.0.0.1:PORT/v1"

Behaviours (header ``x-fake-behavior`` or ``fake-...`` tokens in the model
name) are described in :mod:`heliograph.fake_upstream.behavior`.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .app import build_app
from .server import FakeUpstreamServer

__all__ = ["FakeUpstreamServer", "build_app", "run"]


def run(host: str = "127.0.0.1", port: int = 9999, *, chunk_delay_ms: float = 0.0) -> None:
    """Serve until interrupted (uses uvloop when importable)."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(build_app(chunk_delay_ms=chunk_delay_ms), host=host, port=port, loop=loop,
                access_log=None,
                print=lambda *_: print(f"heliograph fake upstream: OpenAI at "
                                       f"http://{host}:{port}/v1, Anthropic, Gemini and "
                                       f"Azure at http://{host}:{port}", flush=True))
