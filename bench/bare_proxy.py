#!/usr/bin/env python3
"""Bare pass-through reference for bench/run.py: the least a Python proxy can do.

Raw ASGI under uvicorn (uvloop, httptools), one aiohttp session per worker, every
request logged as a row batched into SQLite. No framework, no parsing, no auth. It is
the yardstick for what Python + uvicorn + aiohttp cost at minimum on this machine.

    BARE_UPSTREAM=http://127.0.0.1:8000 BARE_DB=/tmp/bare.db \\
        python bench/bare_proxy.py --port 8001 --workers 2

POST <path> is forwarded to $BARE_UPSTREAM<path> (a text/event-stream answer relayed
read by read); GET /healthz -> ok;
GET /count -> rows written to $BARE_DB so far (all workers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import time
from contextlib import closing, suppress
from pathlib import Path

import aiohttp

UPSTREAM = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:8000").rstrip("/")
DB_PATH = os.environ.get("BARE_DB", "bare.db")
FLUSH_S = 0.1
FORWARDED = (b"authorization", b"content-type", b"accept")
INSERT = ("INSERT INTO requests (ts, path, status, latency_ms, request, response) "
          "VALUES (?, ?, ?, ?, ?, ?)")


class Worker:
    """Per-process state, set up on lifespan startup (the session needs the running loop)."""

    session: aiohttp.ClientSession
    db: sqlite3.Connection
    flusher: asyncio.Task
    stop: asyncio.Event
    pending: list[tuple] = []


def open_db() -> sqlite3.Connection:
    # Workers share the file: the timeout waits out the other's write lock. Only one
    # flush runs at a time, so the connection can move between to_thread's threads.
    db = sqlite3.connect(DB_PATH, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, ts REAL, "
               "path TEXT, status INTEGER, latency_ms REAL, request BLOB, response BLOB)")
    db.commit()
    return db


def write_rows(rows: list[tuple]) -> None:
    with Worker.db:  # one transaction per batch
        Worker.db.executemany(INSERT, rows)


async def flush() -> None:
    if Worker.pending:
        rows, Worker.pending = Worker.pending, []
        await asyncio.to_thread(write_rows, rows)  # keep the loop serving meanwhile


async def flush_until_stopped() -> None:
    # Stopped by an event, not cancelled: a cancel would leave a write running in its
    # thread, and the last batch (rows of the final <100 ms) must still be written.
    while not Worker.stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(Worker.stop.wait(), FLUSH_S)
        await flush()


def count_rows() -> int:
    with closing(sqlite3.connect(DB_PATH, timeout=30)) as db:  # sees every worker's rows
        return db.execute("SELECT count(*) FROM requests").fetchone()[0]


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            Worker.db = await asyncio.to_thread(open_db)
            Worker.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60))
            Worker.stop = asyncio.Event()
            Worker.flusher = asyncio.create_task(flush_until_stopped())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            Worker.stop.set()
            await Worker.flusher
            await Worker.session.close()
            Worker.db.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send, status: int, content_type: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def relay(send, status: int, content_type: bytes, resp) -> bytes:
    """A stream: each upstream read sent on as it comes; the whole body kept for the log."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type)]})
    chunks = []
    async for chunk in resp.content.iter_any():
        chunks.append(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
    return b"".join(chunks)


async def forward(scope, receive, send) -> None:
    start = time.perf_counter()
    body = await read_body(receive)
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARDED}
    try:
        async with Worker.session.post(UPSTREAM + scope["path"], data=body,
                                       headers=headers) as resp:
            status = resp.status
            content_type = resp.headers.get("Content-Type", "application/octet-stream")
            if content_type.startswith("text/event-stream"):
                data = await relay(send, status, content_type.encode(), resp)
            else:
                data = await resp.read()
                await respond(send, status, content_type.encode(), data)
    except aiohttp.ClientError as exc:
        status, data = 502, repr(exc).encode()
        await respond(send, status, b"text/plain", data)
    latency_ms = (time.perf_counter() - start) * 1000
    Worker.pending.append((time.time(), scope["path"], status, latency_ms, body, data))


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    method, path = scope["method"], scope["path"]
    if method == "POST":
        await forward(scope, receive, send)
    elif method == "GET" and path == "/healthz":
        await respond(send, 200, b"text/plain", b"ok")
    elif method == "GET" and path == "/count":
        count = await asyncio.to_thread(count_rows)
        await respond(send, 200, b"text/plain", str(count).encode())
    else:
        await respond(send, 404, b"text/plain", b"not found")


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    # An import string (not the object), so that --workers > 1 can spawn workers.
    uvicorn.run("bare_proxy:app", app_dir=str(Path(__file__).resolve().parent),
                host=args.host, port=args.port, workers=args.workers, loop="uvloop",
                http="httptools", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
