#!/usr/bin/env python3
"""Where the slow requests at one connection come from: the latency distribution seen by
a one-connection client next to what happened in the server processes at that moment.

    python bench/tail.py [--workers 1] [--requests 20000] [--rounds 2]
                         [--variants base nowriter ...] [--no-bare]

For each round it starts, one after the other, the gateway once per variant and the bare
pass-through (bench/bare_proxy.py), all on bench/run.py's nginx upstream, and sends
--requests plain chat calls one at a time over one keep-alive connection (a small raw
socket client; its own GC is off). Interleaving the variants round by round keeps a
change in the machine's load from deciding the comparison.

Every server process carries bench/tail_probe.py (as sitecustomize): GC collections,
each request's time inside the ASGI app, the journal's appends and rotations, the
writer's inserts, all on CLOCK_MONOTONIC like the client's timestamps. The report gives,
per variant: client latency p50/p99/p99.9 (and p99 as wrk would count it, with its
coordinated-omission correction) and requests over 2 ms per 10k; the same for
the time inside the app; and for the requests over 2 ms, the share that overlapped a
writer insert, a GC collection or a journal rotation, next to the share of all requests
that did (what chance alone gives).

Variants (tail_probe.VARIANTS): base, nowriter (the writer idle), sched_idle (the whole
host SCHED_IDLE instead of nice 19), sync_normal (SQLite without fsync per commit),
gc_off (no GC in workers), rotate_1s (segments closed every second), rotate_inline (the
next segment created on the loop, as before the spare segment). Several at once: a
comma-separated name.

On a shared machine, --autogroup-nice -10 (root) puts the measured sessions ahead of
the others (each session is an autogroup, and CPU is shared between autogroups first).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as bench
from proctree import tree_memory

HERE = Path(__file__).resolve().parent
SLOW_S = 0.002


def request_bytes(scenario: bench.Scenario, auth: str) -> bytes:
    body = scenario.body.encode()
    head = [f"POST {scenario.path} HTTP/1.1", "Host: 127.0.0.1",
            f"Authorization: {auth}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in scenario.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def one_connection(port: int, payload: bytes, n: int) -> list[tuple[float, float]]:
    """n requests in a row on one connection: (start, end) each, CLOCK_MONOTONIC. The
    answer is read to its end (content-length, or the last chunk of a chunked body)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = []
    clock = time.monotonic
    buf = b""
    for _ in range(n):
        t0 = clock()
        sock.sendall(payload)
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buf[:head_end].lower()
                i = head.find(b"content-length:")
                if i >= 0:
                    j = head.find(b"\r\n", i)
                    total = head_end + 4 + int(head[i + 15:j if j > 0 else None])
                else:  # chunked: ends with the zero-length chunk
                    end = buf.find(b"\r\n0\r\n\r\n", head_end)
                    total = end + 7 if end >= 0 else len(buf) + 1
                if len(buf) >= total:
                    status = buf[9:12]
                    buf = buf[total:]
                    break
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            buf += chunk
        out.append((t0, clock()))
        if status != b"200":
            raise RuntimeError(f"status {status!r}")
    sock.close()
    return out


def pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def dist(durations: list[float]) -> dict:
    s = sorted(durations)
    n = len(s)
    return {"n": n, "p50_ms": 1e3 * pct(s, 50), "p99_ms": 1e3 * pct(s, 99),
            "p999_ms": 1e3 * pct(s, 99.9), "max_ms": 1e3 * s[-1],
            "over_2ms_per_10k": 1e4 * sum(d > SLOW_S for d in s) / n}


def wrk_p99(durations: list[float], seconds: float) -> float:
    """p99 (s) of these one-connection latencies as wrk would report it: wrk's
    `stats_correct` (coordinated omission) counts a request slower than twice the mean
    interval again at every interval below its latency, so one pause of L is counted
    about L / interval times. Whole microseconds, as wrk records them."""
    interval = int(1e6 * seconds / len(durations))
    counts: dict[int, int] = {}
    for d in durations:
        us = int(1e6 * d)
        counts[us] = counts.get(us, 0) + 1
    if interval > 0:
        for us, n in list(counts.items()):
            if us >= 2 * interval:
                m = us - interval
                while m > interval:
                    counts[m] = counts.get(m, 0) + n
                    m -= interval
    total, seen = sum(counts.values()), 0
    for us in sorted(counts):
        seen += counts[us]
        if seen >= 0.99 * total:
            return us / 1e6
    return 0.0


class Intervals:
    """Sorted, merged intervals; whether [a, b] overlaps any."""

    def __init__(self, spans: list[tuple[float, float]]):
        merged: list[list[float]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]

    def overlaps(self, a: float, b: float) -> bool:
        i = bisect.bisect_right(self.starts, b) - 1
        return i >= 0 and self.ends[i] >= a

    def total(self) -> float:
        return sum(e - s for s, e in zip(self.starts, self.ends))


def collect(srv: bench.Server, probe_dir: Path) -> list[dict]:
    """Every probed process of the tree writes its events; read them back."""
    pids = [p["pid"] for p in tree_memory(srv.proc.pid)["processes"]]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    time.sleep(1.0)
    found = []
    for pid in pids:
        path = probe_dir / f"{pid}.json"
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found


def analyse(requests: list[tuple[float, float]], procs: list[dict]) -> dict:
    t_lo, t_hi = requests[0][0], requests[-1][1]

    def spans(kind: str, pred=lambda e: True) -> list[tuple[float, float]]:
        return [(e[0], e[1]) for p in procs for e in p["events"].get(kind, [])
                if pred(e) and e[1] >= t_lo and e[0] <= t_hi]

    asgi = [e[1] - e[0] for p in procs for e in p["events"]["asgi"]
            if e[0] >= t_lo and e[1] <= t_hi]
    asgi_cpu = [e[2] for p in procs for e in p["events"]["asgi"]
                if e[0] >= t_lo and e[1] <= t_hi and len(e) > 2]
    # The workers' collections (the processes that served requests), not the host's.
    gcs = [e for p in procs if p["events"]["asgi"] for e in p["events"]["gc"]
           if t_lo <= e[0] <= t_hi]
    inserts = [e for p in procs for e in p["events"]["insert"] if t_lo <= e[0] <= t_hi]
    appends = [e[1] - e[0] for p in procs for e in p["events"]["append"]
               if t_lo <= e[0] <= t_hi]
    rotates = [e[1] - e[0] for p in procs for e in p["events"]["rotate"]
               if t_lo <= e[0] <= t_hi]
    worker_gc = [(e[0], e[1]) for e in gcs]
    causes = {"insert": Intervals(spans("insert")), "gc": Intervals(worker_gc),
              "rotate": Intervals(spans("rotate")),
              "supervise": Intervals(spans("supervise")),
              "budgets": Intervals(spans("budgets"))}
    # The slowest 1% (what p99 is made of), whatever the machine's load made of p50.
    cut = sorted(b - a for a, b in requests)[int(len(requests) * 0.99)]
    slow = [(a, b) for a, b in requests if b - a > cut]
    seconds = t_hi - t_lo
    out = {
        "client": dict(dist([b - a for a, b in requests]),
                       p99_wrk_ms=1e3 * wrk_p99([b - a for a, b in requests], t_hi - t_lo)),
        "in_app": dist(asgi) if asgi else None,
        "in_app_cpu": dist(asgi_cpu) if asgi_cpu else None,
        "seconds": round(seconds, 2),
        "gc": {"count": len(gcs),
               "by_gen": {g: sum(e[2] == g for e in gcs) for g in (0, 1, 2)},
               "total_ms": 1e3 * sum(e[1] - e[0] for e in gcs),
               "max_ms": 1e3 * max((e[1] - e[0] for e in gcs), default=0)},
        "writer": {"inserts": len(inserts), "records": sum(e[2] for e in inserts),
                   "busy_share": causes["insert"].total() / seconds,
                   "max_ms": 1e3 * max((e[1] - e[0] for e in inserts), default=0)},
        "append": dist(appends) if appends else None,
        "rotate": dist(rotates) if rotates else None,
        "slow": len(slow),
        "slow_overlapping": {}, "all_overlapping": {},
    }
    # The journal's own syscalls: a slow one during an insert (whose commit fsyncs)
    # points at the disk, not at the CPU.
    for kind in ("append", "rotate"):
        slow_ops = [(e[0], e[1]) for p in procs for e in p["events"][kind]
                    if t_lo <= e[0] <= t_hi and e[1] - e[0] > 0.0005]
        out[f"{kind}_over_0.5ms"] = len(slow_ops)
        out[f"{kind}_over_0.5ms_during_insert"] = sum(
            causes["insert"].overlaps(a, b) for a, b in slow_ops)
    out["slow_cycles"] = cycles_of(slow, procs)
    out["all_cycles"] = cycles_of(requests, procs)
    for name, iv in causes.items():
        out["slow_overlapping"][name] = (sum(iv.overlaps(a, b) for a, b in slow)
                                         / max(len(slow), 1))
        out["all_overlapping"][name] = (sum(iv.overlaps(a, b) for a, b in requests)
                                        / len(requests))
    return out


def cycles_of(requests: list[tuple[float, float]], procs: list[dict]) -> dict | None:
    """Medians (µs) over `requests` of the serving worker's cycle: the time in the app,
    its loop thread's CPU there, and how long that thread waited for a core (runnable,
    not running) since the previous request ended; None without the probe's wait."""
    served = sorted((e[0], e[1], e[2], e[3] - prev[3])
                    for p in procs for prev, e in zip(p["events"]["asgi"],
                                                     p["events"]["asgi"][1:])
                    if len(e) > 3)
    if not served:
        return None
    starts = [e[0] for e in served]
    picked = []
    for a, b in requests:
        i = bisect.bisect_left(starts, a)
        if i < len(served) and served[i][0] <= b:
            picked.append(served[i])
    if not picked:
        return None

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]
    return {"n": len(picked),
            "in_app_us": 1e6 * median([e[1] - e[0] for e in picked]),
            "cpu_us": 1e6 * median([e[2] for e in picked]),
            "waited_us": median([e[3] for e in picked]) / 1e3,
            "waited_p90_us": sorted(e[3] for e in picked)[int(len(picked) * 0.9)] / 1e3,
            "client_us": 1e6 * median([b - a for a, b in requests])}


def sched_totals(root_pid: int) -> tuple[int, int]:
    """(ns on a core, ns runnable but waiting for one) summed over every thread of
    root_pid's process tree so far (/proc schedstat)."""
    ran = waited = 0
    for proc in tree_memory(root_pid)["processes"]:
        for task in Path(f"/proc/{proc['pid']}/task").glob("*"):
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:   # gone meanwhile
                continue
            ran += int(fields[0])
            waited += int(fields[1])
    return ran, waited


def show(label: str, res: dict) -> None:
    c, a = res["client"], res["in_app"]
    line = (f"{label:<26} client p50 {c['p50_ms']:.2f} p99 {c['p99_ms']:.2f} "
            f"(as wrk counts: {c['p99_wrk_ms']:.2f}) "
            f"p99.9 {c['p999_ms']:.2f} max {c['max_ms']:.1f} ms, >2ms {c['over_2ms_per_10k']:.0f}"
            f"/10k")
    if a:
        line += (f" | in app p50 {a['p50_ms']:.2f} p99 {a['p99_ms']:.2f} p99.9 "
                 f"{a['p999_ms']:.2f}, >2ms {a['over_2ms_per_10k']:.0f}/10k")
    print(line, flush=True)
    if res["in_app"] is None:
        return
    u = res["in_app_cpu"]
    if u:
        print(f"{'':<26} in-app CPU p50 {u['p50_ms']:.3f} p99 {u['p99_ms']:.3f} p99.9 "
              f"{u['p999_ms']:.3f} max {u['max_ms']:.2f} ms, >2ms {u['over_2ms_per_10k']:.0f}"
              f"/10k", flush=True)
    g, w = res["gc"], res["writer"]
    print(f"{'':<26} gc {g['count']} ({g['by_gen']}) total {g['total_ms']:.1f} ms max "
          f"{g['max_ms']:.2f} ms | writer {w['inserts']} inserts, busy "
          f"{100 * w['busy_share']:.1f}%, max {w['max_ms']:.1f} ms", flush=True)
    if res["append"]:
        print(f"{'':<26} append p99 {res['append']['p99_ms']:.3f} max "
              f"{res['append']['max_ms']:.2f} ms | rotate p99 "
              f"{(res['rotate'] or {}).get('p99_ms', 0):.3f} max "
              f"{(res['rotate'] or {}).get('max_ms', 0):.2f} ms | over 0.5 ms (during an "
              f"insert): append {res['append_over_0.5ms']} "
              f"({res['append_over_0.5ms_during_insert']}), rotate "
              f"{res['rotate_over_0.5ms']} ({res['rotate_over_0.5ms_during_insert']})",
              flush=True)
    for which in ("slow", "all"):
        if cyc := res.get(f"{which}_cycles"):
            print(f"{'':<26} {which} requests' medians: client {cyc['client_us']:.0f} us, in "
                  f"app {cyc['in_app_us']:.0f} (CPU {cyc['cpu_us']:.0f}), the loop waited "
                  f"for a core {cyc['waited_us']:.0f} (p90 {cyc['waited_p90_us']:.0f}) us "
                  f"a cycle", flush=True)
    if up := res.get("upstream_per_request_us"):
        print(f"{'':<26} nginx a request: CPU {up['cpu']:.0f} us, waited for a core "
              f"{up['waited']:.0f} us", flush=True)
    so, ao = res["slow_overlapping"], res["all_overlapping"]
    print(f"{'':<26} of the {res['slow']} slowest 1%: " + ", ".join(
        f"{k} {100 * so[k]:.0f}% (all {100 * ao[k]:.0f}%)" for k in so), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=["base"])
    ap.add_argument("--no-bare", action="store_true")
    ap.add_argument("--autogroup-nice", type=int, default=0,
                    help="e.g. -10: run the client, nginx and the servers' sessions ahead "
                    "of the machine's other sessions (root; emulates a quiet machine)")
    ap.add_argument("--output", type=Path, default=bench.RESULTS / "tail.json")
    args = ap.parse_args()
    if args.autogroup_nice and not os.environ.get("TAIL_OWN_SESSION"):
        # The client is this process: in a session of its own, so raising it (below)
        # does not raise the shell that started it.
        return subprocess.run([sys.executable, *sys.argv], start_new_session=True,
                              env=dict(os.environ, TAIL_OWN_SESSION="1")).returncode
    gc.disable()  # the client's own pauses would land in the tail
    procs, tmp = bench.Procs(), Path(tempfile.mkdtemp(prefix="heliograph-tail-"))
    hook = tmp / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
        "import tail_probe\ntail_probe.install()\n")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])
    chat = next(s for s in bench.SCENARIOS if s.name == "chat")
    results: dict = {"uptime": [], "runs": []}
    try:
        bench.AUTOGROUP_NICE = args.autogroup_nice  # every process Procs starts, and us
        bench.raise_session(os.getpid())
        upstream = bench.start_nginx(procs, tmp)
        nginx_pid = procs.procs[-1][1].pid
        targets = [(v, bench.start_gateway, f"Bearer {bench.ADMIN_KEY}")
                   for v in args.variants]
        if not args.no_bare:
            targets.append(("bare", bench.start_bare, f"Bearer {bench.UPSTREAM_KEY}"))
        for rnd in range(args.rounds):
            for name, start, auth in targets:
                probe_dir = tmp / f"probe-{rnd}-{name}"
                probe_dir.mkdir()
                os.environ["TAIL_PROBE_DIR"] = str(probe_dir)
                os.environ["TAIL_VARIANT"] = "" if name in ("base", "bare") else name
                srv = start(procs, tmp / f"{name}-{rnd}", upstream, args.workers)
                try:
                    payload = request_bytes(chat, auth)
                    one_connection(srv.port, payload, 300)  # warm-up
                    time.sleep(1.5)  # the background host is up and idle
                    load = os.getloadavg()[0]
                    upstream_before = sched_totals(nginx_pid)
                    reqs = one_connection(srv.port, payload, args.requests)
                    upstream_after = sched_totals(nginx_pid)
                    res = analyse(reqs, collect(srv, probe_dir))
                    res["upstream_per_request_us"] = {
                        what: (after - before) / 1e3 / len(reqs) for what, before, after
                        in zip(("cpu", "waited"), upstream_before, upstream_after)}
                finally:
                    procs.stop(srv.proc)
                res.update(variant=name, round=rnd, workers=args.workers, load1=load)
                results["runs"].append(res)
                show(f"r{rnd} {name} {args.workers}w (load {load:.1f})", res)
    finally:
        procs.stop_all()
        for var in ("TAIL_PROBE_DIR", "TAIL_VARIANT"):
            os.environ.pop(var, None)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
