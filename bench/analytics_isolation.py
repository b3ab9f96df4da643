#!/usr/bin/env python3
"""Analytics never hold up the proxy (issue #16): proxied-request latency and throughput
with and without 6 concurrent 30-day analytics calls, on one gateway worker.

    python bench/analytics_isolation.py --database-url sqlite:////tmp/h.db   # a filled log
    python bench/analytics_isolation.py --records 100000                     # fills one

nginx is the upstream (as in bench/run.py), wrk the proxied load (-t1 -c8 for --duration
seconds). The same load runs twice: alone, then while 6 client threads call 30-day
analytics back to back: three answered from rollups (metrics by user_id, by hour, the
overview) and three that must scan raw rows (group_by=session_id, a comparison filter,
users in a window), the worst case for the database. Appends a table to
bench/log_scale.md (or --out).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    ADMIN_KEY,
    SCENARIOS,
    UPSTREAM_KEY,
    Procs,
    free_port,
    run_wrk,
    spawn_server,
    start_nginx,
    warm_up,
    write_lua,
)

HERE = Path(__file__).resolve().parent


def analytics_paths() -> list[str]:
    since = urllib.parse.quote((_dt.datetime.now(_dt.UTC) - _dt.timedelta(days=30))
                               .strftime("%Y-%m-%dT%H:%M:%SZ"))
    return [
        f"/api/v1/metrics?group_by=user_id&since={since}",          # rollups
        f"/api/v1/metrics?group_by=hour&since={since}",
        f"/api/v1/overview?since={since}",
        f"/api/v1/metrics?group_by=session_id&since={since}",       # raw rows, SQL-summed
        f"/api/v1/metrics?group_by=model&latency_gt=0&since={since}",
        f"/api/v1/users?since={since}",
    ]


class AnalyticsLoad:
    """One thread per path, calling it back to back until stopped."""

    def __init__(self, port: int, paths: list[str]):
        self.port, self.paths = port, paths
        self.stop = threading.Event()
        self.took: dict[str, list[float]] = {p: [] for p in paths}
        self.failed: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(p,), daemon=True)
                        for p in paths]

    def _loop(self, path: str) -> None:
        headers = {"authorization": f"Bearer {ADMIN_KEY}"}
        while not self.stop.is_set():
            start = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.failed.append(f"{path} -> {resp.status}")
            except OSError as exc:
                self.failed.append(f"{path}: {exc}")
            finally:
                conn.close()
            self.took[path].append(time.perf_counter() - start)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(150)


def start_gateway(procs: Procs, tmp: Path, upstream: int, database_url: str):
    port = free_port()
    config = tmp / "heliograph.toml"
    config.write_text(f'[providers.openai]\nbase_url = "http://127.0.0.1:{upstream}/v1"\n\n'
                      f'[storage]\ndatabase_url = "{database_url}"\n')
    env = dict(os.environ, OPENAI_API_KEY=UPSTREAM_KEY, HELIOGRAPH_ADMIN_KEY=ADMIN_KEY)
    for var in ("HELIOGRAPH_CONFIG", "HELIOGRAPH_DATABASE_URL", "HELIOGRAPH_REDIS_URL"):
        env.pop(var, None)
    argv = [sys.executable, "-m", "heliograph", "serve", "--config", str(config),
            "--port", str(port), "--workers", "1"]
    return spawn_server(procs, "gateway", argv, port, tmp, 1, env, lambda _port: 0)


def row(label: str, res: dict) -> str:
    return (f"| {label} | {res['rps']:,.0f} | {res['p50_us'] / 1000:.1f} ms"
            f" | {res['p99_us'] / 1000:.1f} ms | {res['max_us'] / 1000:.0f} ms"
            f" | {res['errors'] + res['non2xx']} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "log_scale.md"))
    args = parser.parse_args(argv)
    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="heliograph-isolation-") as tmp_name:
        tmp = Path(tmp_name)
        url = args.database_url
        if url is None:
            url = f"sqlite:///{tmp}/log.db"
            (tmp / "fill.toml").write_text(f'[storage]\ndatabase_url = "{url}"\n')
            subprocess.run([sys.executable, "-m", "heliograph", "demo", "--records",
                            str(args.records), "--days", "30", "--config",
                            str(tmp / "fill.toml")], check=True)
        try:
            upstream = start_nginx(procs, tmp)
            srv = start_gateway(procs, tmp, upstream, url)
            chat = SCENARIOS[0]
            headers = {**chat.headers, "Authorization": f"Bearer {ADMIN_KEY}"}
            warm_up(srv.port, chat, headers, 200)
            script = write_lua(tmp, "chat", chat, headers)
            alone = run_wrk(srv.port, script, 1, args.connections, args.duration)
            with AnalyticsLoad(srv.port, analytics_paths()) as load:
                time.sleep(1.0)   # every analytics thread has a call in flight
                loaded = run_wrk(srv.port, script, 1, args.connections, args.duration)
        finally:
            procs.stop_all()
    lines = ["", f"## Proxy latency under analytics load ({url.split('://')[0]}, one worker,"
             f" wrk -t1 -c{args.connections}, {args.duration} s each)", "",
             "| proxied chat completions | req/s | p50 | p99 | max | errors |",
             "|---|---|---|---|---|---|",
             row("alone", alone), row("with 6 concurrent 30-day analytics calls", loaded),
             "", "| analytics call (during the loaded run) | calls | median |", "|---|---|---|"]
    for path, took in load.took.items():
        median = f"{statistics.median(took) * 1000:.0f} ms" if took else "—"
        lines.append(f"| `{path.split('?')[0]}?{path.split('?')[1].split('&since')[0]}` "
                     f"| {len(took)} | {median} |")
    if load.failed:
        lines += ["", f"analytics failures: {load.failed[:5]}"]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
