#!/usr/bin/env python3
"""Bytecodes and Python calls per request, by function, in one worker: the Python-level
view that callgrind (C functions only: the eval loop is one function to it) does not give.

    python bench/bytecodes.py [--scenario chat-stream] [--requests 500] [--bare] [--top 40]

Runs nginx (bench/run.py's fake upstream) and one gateway worker (or with --bare the bare
pass-through) with a sitecustomize that waits for SIGUSR1, sends 300 warm-up requests one
after another, then counts every bytecode (sys.settrace with f_trace_opcodes) and every
Python call or coroutine resume of the worker's main thread over --requests requests,
until SIGUSR2. Printed per request: totals, by file, and the top functions. Exact and
load-free like callgrind, but a bytecode is not a fixed cost: a comprehension step is
~1 k instructions, a call into a C slot wrapper from map() more (see bench/README.md,
session 17, hStream4), so price a change with bench/snippet_instructions.py and
bench/instructions.py before trusting it. Run it inside the tree measured.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import pickle
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import run as bench

SITECUSTOMIZE = '''
import collections, os, pickle, signal, sys
_ops, _calls = collections.Counter(), collections.Counter()
def _local(frame, event, arg):
    if event == "opcode":
        _ops[frame.f_code] += 1
    return _local
def _global(frame, event, arg):
    frame.f_trace_opcodes = True
    _calls[frame.f_code] += 1
    return _local
def _start(*_):
    sys.settrace(_global)
def _stop(*_):
    sys.settrace(None)
    out = collections.defaultdict(lambda: [0, 0])
    for code in set(_ops) | set(_calls):   # code objects of one name (dataclass __init__s) summed
        key = (code.co_filename, code.co_firstlineno, code.co_qualname)
        out[key][0] += _ops[code]
        out[key][1] += _calls[code]
    with open(os.environ["BENCH_BYTECODES_OUT"], "wb") as fh:
        pickle.dump(dict(out), fh)
signal.signal(signal.SIGUSR1, _start)
signal.signal(signal.SIGUSR2, _stop)
'''


def count(args) -> dict:
    procs, tmp = bench.Procs(), Path(tempfile.mkdtemp(prefix="heliograph-bytecodes-"))
    try:
        (tmp / "site").mkdir()
        (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        out = tmp / "counts.pickle"
        upstream = bench.start_nginx(procs, tmp)
        port = bench.free_port()
        path = os.pathsep.join([str(tmp / "site"), os.environ.get("PYTHONPATH", "")])
        argv, env, auth = bench.one_worker(
            tmp, upstream, port, args.bare,
            dict(os.environ, PYTHONPATH=path, BENCH_BYTECODES_OUT=str(out)))
        log = tmp / "server.log"
        with open(log, "wb") as fh:
            proc = procs.start("server", argv, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp,
                               env=env)
        bench.wait_http(port, "/healthz", proc, "server", log, timeout=60)
        scenario = {s.name: s for s in bench.SCENARIOS}[args.scenario]
        headers = dict(scenario.headers, Authorization=auth)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def send(n: int) -> None:
            for _ in range(n):
                conn.request("POST", scenario.path, body=scenario.body.encode(),
                             headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{scenario.name}: HTTP {resp.status}")

        send(300)
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(0.2)
        send(args.requests)
        os.kill(proc.pid, signal.SIGUSR2)
        for _ in range(100):
            time.sleep(0.1)
            if out.exists() and out.stat().st_size:
                time.sleep(0.2)
                break
        with open(out, "rb") as fh:
            return pickle.load(fh)
    finally:
        procs.stop_all()


def short(filename: str) -> str:
    return filename.split("site-packages/")[-1].split("heliograph/", 1)[-1] \
        if "heliograph/" in filename or "site-packages/" in filename else filename


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="chat-stream")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--bare", action="store_true", help="count the bare pass-through")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    counts, n = count(args), args.requests
    ops = sum(o for o, _ in counts.values()) / n
    calls = sum(c for _, c in counts.values()) / n
    print(f"{'bare' if args.bare else 'gateway'} {args.scenario}: {ops:,.0f} bytecodes, "
          f"{calls:,.0f} Python calls and resumes a request")
    by_file: collections.Counter = collections.Counter()
    for (filename, _, _), (o, _) in counts.items():
        by_file[short(filename)] += o / n
    print("\nbytecodes  file")
    for name, o in by_file.most_common(args.top // 2):
        print(f"{o:9.1f}  {name}")
    print("\nbytecodes  calls  function")
    top = sorted(counts.items(), key=lambda kv: -kv[1][0])[:args.top]
    for (filename, line, name), (o, c) in top:
        print(f"{o / n:9.1f}  {c / n:5.2f}  {short(filename)}:{line} {name}")


if __name__ == "__main__":
    main()
