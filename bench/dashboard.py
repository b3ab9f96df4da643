"""Each dashboard page's server time on a large log.

    python bench/dashboard.py --records 200000            # SQLite, filled by `heliograph demo`
    python bench/dashboard.py --records 1000000 --runs 5
    python bench/dashboard.py --database-url postgresql://postgres@127.0.0.1:5432/bench
    python bench/dashboard.py --reuse /tmp/dash.db        # a database filled before
    python bench/dashboard.py --reuse postgresql://…      # (a URL: the same, any store)

Fills a database with `heliograph demo --records N --days 30` (the real insert path),
starts `heliograph serve` on it, signs in through /dashboard/login like a browser, then
times each page (the HTML only: its queries and its rendering) over loopback: the median
and the slowest of --runs fetches after one warm-up. The goal (issue #10) is 300 ms per
page at 1M requests on SQLite. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ADMIN_KEY = "sk-hg-bench-dashboard-admin-key-0123"
PAGES = [
    ("overview 7d", "/dashboard/"),
    ("overview 30d by week", "/dashboard/?period=30d&trend=week"),
    ("requests", "/dashboard/requests"),
    ("requests by property", "/dashboard/requests?property.environment=production"),
    ("requests by user", None),  # filled in with a real user below
    ("requests, text search", "/dashboard/requests?q=refund&period=24h"),
    ("one request", None),
    ("users (all time)", "/dashboard/users"),
    ("users 7d", "/dashboard/users?period=7d"),
    ("users 30d by cost", "/dashboard/users?period=30d&sort=cost"),
    ("properties 30d", "/dashboard/properties"),
    ("sessions (all time)", "/dashboard/sessions"),
    ("one session", None),
    ("cache 7d", "/dashboard/cache"),
    ("cache 30d", "/dashboard/cache?period=30d"),
    ("cache 24h", "/dashboard/cache?period=24h"),
    ("cache all time", "/dashboard/cache?period=all"),
    ("rate limits 7d", "/dashboard/ratelimits"),
    ("keys", "/dashboard/keys"),
]


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fill(database_url: str, records: int, workdir: Path, env: dict) -> float:
    config = workdir / "fill.toml"
    config.write_text(f'[storage]\ndatabase_url = "{database_url}"\n'
                      f'journal_dir = "{workdir / "journal"}"\n')
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "heliograph", "demo", "--config", str(config),
                    "--records", str(records), "--days", "30"], check=True, env=env,
                   cwd=workdir)
    return time.monotonic() - started


def serve(database_url: str, workdir: Path, env: dict) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    config = workdir / "serve.toml"
    config.write_text(f'[storage]\ndatabase_url = "{database_url}"\n'
                      f'journal_dir = "{workdir / "journal"}"\n'
                      '[analytics]\nquery_timeout_s = 120\n')
    log = open(workdir / "gateway.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "heliograph", "serve", "--config",
                             str(config), "--port", str(port)], env=env, cwd=workdir,
                            stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            return url, proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((workdir / "gateway.log").read_text()[-3000:]) from None
            time.sleep(0.2)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def signed_in_opener(url: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(url + "/dashboard/login").read().decode()
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"key": ADMIN_KEY, "login_token": token}).encode()
    opener.open(url + "/dashboard/login", data=data).read()
    if not any(c.name == "heliograph_session" for c in jar):
        raise RuntimeError("sign-in failed")
    return opener


def timed(opener, url: str, runs: int) -> tuple[float, float, int]:
    opener.open(url).read()  # warm-up (and the page must answer at all)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with opener.open(url) as resp:
            body = resp.read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), len(body)


def api(url: str, path: str) -> dict:
    import json
    req = urllib.request.Request(url + path, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url")
    parser.add_argument("--reuse", help="an already filled SQLite file or database URL:"
                        " no demo fill")
    parser.add_argument("--only", help="only the pages whose name holds this, e.g. cache")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="heliograph-bench-dashboard-"))
    env = {**os.environ, "HELIOGRAPH_ADMIN_KEY": ADMIN_KEY}
    if args.reuse and "://" in args.reuse:
        database_url = args.reuse
    elif args.reuse:
        database_url = f"sqlite:///{Path(args.reuse).resolve()}"
    else:
        database_url = args.database_url or f"sqlite:///{workdir / 'dashboard.db'}"
        seconds = fill(database_url, args.records, workdir, env)
        print(f"filled {args.records:,} records in {seconds:.0f} s", file=sys.stderr)
    url, proc = serve(database_url, workdir, env)
    try:
        opener = signed_in_opener(url)
        some = api(url, "/api/v1/requests?limit=50")["data"]
        user = next(r["user_id"] for r in some if r["user_id"])
        session = next((r["session_id"] for r in some if r["session_id"]), None)
        pages = []
        for name, path in PAGES:
            if args.only and args.only not in name:
                continue
            if name == "requests by user":
                path = "/dashboard/requests?" + urllib.parse.urlencode({"user_id": user})
            elif name == "one request":
                path = f"/dashboard/requests/{some[0]['id']}"
            elif name == "one session":
                if session is None:
                    continue
                path = "/dashboard/sessions/" + urllib.parse.quote(session, safe="")
            pages.append((name, path))
        print(f"\n{database_url.split(':')[0]}, {args.records:,} records over 30 days; "
              f"median / slowest of {args.runs} (ms)\n")
        print("| page | URL | median ms | slowest ms | KB |")
        print("|---|---|---:|---:|---:|")
        for name, path in pages:
            median, worst, size = timed(opener, url + path, args.runs)
            print(f"| {name} | `{path}` | {median:.0f} | {worst:.0f} | {size / 1024:.0f} |",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
