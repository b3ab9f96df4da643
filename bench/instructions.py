#!/usr/bin/env python3
"""Instructions per request, counted by valgrind (callgrind): a cost measure that others'
load on a shared machine does not change, for comparing two versions of the code.

    python bench/instructions.py [--scenario chat chat-stream] [--requests 200] [--bare]

Runs nginx (bench/run.py's fake upstream) and one gateway worker (or with --bare the
bare pass-through) under `valgrind --tool=callgrind`, sends 60 warm-up requests per
scenario, zeroes the counters, sends --requests requests one after another, and prints
the instructions the worker executed per request. The background host is not counted
(valgrind does not follow children). Slow (the worker runs ~50x slower under valgrind):
a scenario takes about a minute. Needs valgrind (Debian package `valgrind`).

Valgrind's replacements of memcpy/memchr count several instructions per byte, so byte
copying and scanning weigh more here than on the CPU; compare versions, not absolutes.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import run as bench


def send(conn: http.client.HTTPConnection, scenario: bench.Scenario,
         headers: dict[str, str], n: int) -> None:
    for _ in range(n):
        conn.request("POST", scenario.path, body=scenario.body.encode(), headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{scenario.name}: HTTP {resp.status}")


def count(args) -> None:
    procs, tmp = bench.Procs(), Path(tempfile.mkdtemp(prefix="heliograph-instr-"))
    try:
        upstream = bench.start_nginx(procs, tmp)
        port = bench.free_port()
        argv, env, auth = bench.one_worker(tmp, upstream, port, args.bare, dict(os.environ))
        out = tmp / "callgrind.out"
        log = tmp / "server.log"
        with open(log, "wb") as fh:
            proc = procs.start("server", ["valgrind", "--tool=callgrind",
                                          f"--callgrind-out-file={out}", *argv],
                               stdout=fh, stderr=subprocess.STDOUT, cwd=tmp, env=env)
        bench.wait_http(port, "/healthz", proc, "server", log, timeout=300)
        scenarios = {s.name: s for s in bench.SCENARIOS}
        for name in args.scenario:
            scenario = scenarios[name]
            headers = dict(scenario.headers, Authorization=auth)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            send(conn, scenario, headers, 60)
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           capture_output=True)
            send(conn, scenario, headers, args.requests)
            subprocess.run(["callgrind_control", "-d", name, str(proc.pid)], check=True,
                           capture_output=True)
            conn.close()
            time.sleep(1)
            dump = max(tmp.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
            total = next(int(line.split()[1]) for line in dump.read_text().splitlines()
                         if line.startswith(("summary:", "totals:")))
            who = "bare" if args.bare else "gateway"
            print(f"{who} {name}: {total / args.requests / 1e6:.3f} M instructions/request",
                  flush=True)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"callgrind dumps kept in {tmp} (callgrind_annotate --inclusive=yes FILE)",
                  flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", nargs="+", default=["chat", "chat-stream"])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--bare", action="store_true", help="count the bare pass-through")
    ap.add_argument("--keep", action="store_true",
                    help="keep the callgrind dumps (to see where the instructions go)")
    count(ap.parse_args())


if __name__ == "__main__":
    main()
