#!/usr/bin/env python3
"""Instructions per stream of the stream relay's own work, counted by valgrind (callgrind):
exact and load-free, for comparing two versions of the SSE parsing and the accumulator.

    python bench/relay_instructions.py [--streams 1000] [--split N]

Relays bench/sse_body.py's stream (22 events, 6.6 KB) the way the pipeline does, with the
caller not asking for the usage (the gateway strips it): SSE events per read
(providers/sse.py), the OpenAI front's accumulator (proxy/streaming.py), OpenAI's
rendering, then the logged answer (`completion`). Printed by stage, each stage including
the ones before it: `split` (the events of each read), `relay` (+ process_batch and
render_batch: what the caller gets), `log` (+ completion: what the record gets). Each
count is the difference between a run of --streams streams and a run of none, divided
by --streams, so imports
and start-up are not counted. --split N: the body in reads of N bytes (default one read,
as nginx sends it in the benchmark). --obfuscation: the same answer as OpenAI sends it today,
every chunk ending with a random `"obfuscation"` string. Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("split", "relay", "log")


async def _relay(body: bytes, split: int, stage: int) -> None:
    from heliograph.providers.sse import EventBatches
    from heliograph.proxy.fronts import OPENAI, OpenAIStream

    reads = [body[i:i + split] for i in range(0, len(body), split)] if split else [body]

    async def chunks():
        for read in reads:
            yield read

    # The OpenAI front's accumulator, as the pipeline makes it for an OpenAI caller.
    acc, renderer, out = OPENAI.accumulator(True), OpenAIStream(), []
    async for batch in EventBatches(chunks()):
        if stage == 0:
            continue
        out.append(renderer.render_batch(acc.process_batch(batch)))
        if acc.done:
            out.append(renderer.finish())
            break
    if stage == 2:
        acc.completion()


def child(streams: int, split: int, stage: int, obfuscation: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sse_body import SSE_BODY, SSE_BODY_OBFUSCATED

    body = (SSE_BODY_OBFUSCATED if obfuscation else SSE_BODY).encode()

    async def run() -> None:
        await _relay(body, split, stage)  # the first one imports and warms up
        for _ in range(streams):
            await _relay(body, split, stage)

    asyncio.run(run())


def count(streams: int, split: int, stage: int, obfuscation: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="heliograph-relay-") as tmp:
        out = Path(tmp) / "callgrind.out"
        # sys.executable itself, not a launcher script (valgrind would count the launcher).
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        os.path.realpath(sys.executable), __file__, "--child",
                        str(streams), str(split), str(stage), str(int(obfuscation))],
                       check=True, capture_output=True)
        return next(int(line.split()[1]) for line in out.read_text().splitlines()
                    if line.startswith(("summary:", "totals:")))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*map(int, sys.argv[2:6]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--split", type=int, default=0, help="bytes per read (0: one read)")
    ap.add_argument("--obfuscation", action="store_true",
                    help="chunks ending with OpenAI's obfuscation string")
    args = ap.parse_args()
    for stage, name in enumerate(STAGES):
        per = (count(args.streams, args.split, stage, args.obfuscation)
               - count(0, args.split, stage, args.obfuscation)) / args.streams
        print(f"{name}: {per / 1000:.1f} k instructions per stream", flush=True)


if __name__ == "__main__":
    main()
