#!/usr/bin/env python3
"""Instructions the worker spends writing a response's head and body, counted by valgrind
(callgrind): uvloop's transport written twice (head, then body: uvicorn's way) against
heliograph/server.py's HeadWithBody (the head held and written with the body in one
writev, the hold released by a call_soon). User space only: the write syscall it saves is
kernel time, which callgrind does not count.

    python bench/head_write_instructions.py

Each count is the difference between 3,000 and 1,000 responses (596 bytes of head, 5,896
of body) on a loopback TCP connection, divided by 2,000. Needs valgrind and uvloop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HEAD, BODY = b"h" * 596, b"b" * 5896


class _StartedCycle:
    """What HeadWithBody reads of uvicorn's response cycle: the response has started."""

    response_started = True


async def _respond(mode: str, responses: int) -> None:
    from heliograph.server import HeadWithBody

    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    reader = socket.create_connection(listener.getsockname())
    sender, _ = listener.accept()
    reader.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, sender)
    call_soon = loop.call_soon
    for _ in range(responses):
        if mode == "held":
            held = HeadWithBody(transport, _StartedCycle, call_soon)  # type: ignore[arg-type]
            held.write(HEAD)
            held.write(BODY)
        else:
            transport.write(HEAD)
            transport.write(BODY)
        await asyncio.sleep(0)  # the loop's step ends (HeadWithBody's call_soon runs)
        try:
            while reader.recv(1 << 20):
                pass
        except BlockingIOError:
            pass


def child(mode: str, responses: int) -> None:
    import uvloop

    uvloop.run(_respond(mode, responses))


def count(mode: str, responses: int) -> int:
    with tempfile.TemporaryDirectory(prefix="heliograph-head-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        os.path.realpath(sys.executable), __file__, "--child", mode,
                        str(responses)], check=True, capture_output=True)
        return next(int(line.split()[1]) for line in out.read_text().splitlines()
                    if line.startswith(("summary:", "totals:")))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
        return
    for mode in ("two writes", "held"):
        per = (count(mode, 3000) - count(mode, 1000)) / 2000
        print(f"{mode}: {per / 1000:.1f} k instructions per response", flush=True)


if __name__ == "__main__":
    main()
