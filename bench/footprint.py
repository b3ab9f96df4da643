#!/usr/bin/env python3
"""Memory of the gateway's process tree next to the bare pass-through's, per process.

    python bench/footprint.py [--workers 2] [--requests 10000] [--modules DIR]

Starts bench/run.py's nginx upstream, `heliograph serve --workers N` and
bench/bare_proxy.py with the same N workers, and reads every process of each tree
(serve master, multiprocessing's resource tracker, workers, the background host): RSS,
peak RSS (VmHWM) and PSS (smaps_rollup), idle (after startup and one request) and after
--requests plain and as many streamed requests (two client threads, keep-alive). Memory
does not depend on the machine's load, so this is meaningful on a shared machine where
latencies are not.

--modules DIR puts a sitecustomize in the servers' PYTHONPATH that writes each process's
sys.modules to DIR/<pid>.txt every second (what each process imports, forked workers
included; diagnosis only: the hook's thread costs a little memory itself).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import run as bench
from proctree import tree_memory

HOOK = '''
import os, sys, threading, time
def _dump():
    out = os.environ["FOOTPRINT_MODULES_DIR"]
    while True:
        time.sleep(1)
        try:
            names = sorted(sys.modules)
            with open(os.path.join(out, f"{os.getpid()}.txt"), "w") as fh:
                fh.write(" ".join(sys.argv) + "\\n" + "\\n".join(names) + "\\n")
        except Exception:
            pass
threading.Thread(target=_dump, daemon=True).start()
# A forked worker has no thread but the forking one: start its own.
os.register_at_fork(after_in_child=lambda: threading.Thread(target=_dump, daemon=True).start())
'''


def load(port: int, scenario: bench.Scenario, headers: dict[str, str], n: int,
         threads: int = 2) -> int:
    """n requests over `threads` keep-alive connections; returns how many got a 200."""
    ok = [0] * threads

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(n // threads):
            conn.request("POST", scenario.path, body=scenario.body.encode(), headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok[i] += resp.status == 200
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(ok)


def role(pid: int, cmd: str, root: int) -> str:
    if pid == root:
        return "master"
    if "resource_tracker" in cmd:
        return "resource tracker"
    if "heliograph.background" in cmd:
        return "background host"
    return "worker"


def snapshot(root: int) -> dict:
    mem = tree_memory(root)
    for p in mem["processes"]:
        p["role"] = role(p["pid"], p["cmd"], root)
    return mem


def show(label: str, mem: dict) -> None:
    print(f"\n{label}: tree RSS {mem['rss_mb']:.1f} MB, peak RSS {mem['peak_rss_mb']:.1f} MB, "
          f"PSS {mem['pss_mb']:.1f} MB")
    print("| process | pid | RSS MB | peak RSS MB | PSS MB |\n|---|---|---|---|---|")
    for p in mem["processes"]:
        print(f"| {p['role']} | {p['pid']} | {p['rss_mb']:.1f} | {p['peak_rss_mb']:.1f} | "
              f"{p['pss_mb']:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--modules", type=Path, default=None, help="dump sys.modules here")
    ap.add_argument("--no-bare", action="store_true")
    ap.add_argument("--idle-after", type=float, default=0.0, metavar="SECONDS",
                    help="one more sample once the traffic has stopped this long (the "
                         "journal writer gives its memory back after 30 s idle)")
    ap.add_argument("--output", type=Path, default=bench.RESULTS / "footprint.json")
    args = ap.parse_args()
    procs, tmp = bench.Procs(), Path(tempfile.mkdtemp(prefix="heliograph-footprint-"))
    if args.modules:
        args.modules.mkdir(parents=True, exist_ok=True)
        hook_dir = tmp / "hook"
        hook_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(HOOK)
        os.environ["FOOTPRINT_MODULES_DIR"] = str(args.modules.resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(hook_dir), *filter(None, [os.environ.get("PYTHONPATH")])])
    scenarios = {s.name: s for s in bench.SCENARIOS}
    result: dict = {}
    try:
        upstream = bench.start_nginx(procs, tmp)
        targets = [("gateway", bench.start_gateway, f"Bearer {bench.ADMIN_KEY}")]
        if not args.no_bare:
            targets.append(("bare", bench.start_bare, f"Bearer {bench.UPSTREAM_KEY}"))
        for name, start, auth in targets:
            srv = start(procs, tmp / name, upstream, args.workers)
            row: dict = {}
            plain = scenarios["chat"]
            stream = scenarios["chat-stream"]
            load(srv.port, plain, dict(plain.headers, Authorization=auth), 2)
            time.sleep(3)  # the background host starts within a second of the first tick
            row["idle"] = snapshot(srv.proc.pid)
            show(f"{name} {args.workers}w idle", row["idle"])
            done = load(srv.port, plain, dict(plain.headers, Authorization=auth),
                        args.requests)
            row["after_plain"] = snapshot(srv.proc.pid)
            show(f"{name} {args.workers}w after {done} plain", row["after_plain"])
            done = load(srv.port, stream, dict(stream.headers, Authorization=auth),
                        args.requests)
            time.sleep(2)
            row["after_stream"] = snapshot(srv.proc.pid)
            show(f"{name} {args.workers}w after {done} streamed", row["after_stream"])
            if args.idle_after > 0:
                time.sleep(max(0.0, args.idle_after - 2))
                row["idle_after"] = snapshot(srv.proc.pid)
                show(f"{name} {args.workers}w {args.idle_after:g} s after the traffic",
                     row["idle_after"])
            result[name] = row
            procs.stop(srv.proc)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
