#!/usr/bin/env python3
"""The log at scale (issue #16): every dashboard query, timed over HTTP on a filled log.

    python bench/log_scale.py --records 200000                       # SQLite and PostgreSQL
    python bench/log_scale.py --records 1000000 --stores sqlite --sqlite-db /tmp/h.db --reuse
    python bench/log_scale.py --postgres postgresql://postgres@127.0.0.1:5432/test

For each store: fill it with `heliograph demo --records N --days 30 --seed 16` (unless
--reuse and it is already filled), start `heliograph serve` on it, and time each query of
the issue's table (plus /api/v1/sessions, /api/v1/properties and a 30-day overview) as the
median of --runs HTTP requests after one warm-up. Writes bench/log_scale.md. PostgreSQL
gets its own schema (bench_log_scale), dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ADMIN_KEY, Procs, free_port, http_get, spawn_server  # noqa: E402

HERE = Path(__file__).resolve().parent
SCHEMA = "bench_log_scale"
GOAL_MS = 300


def fill(config: Path, records: int, log: Path) -> float:
    """Run the demo filler; records/s."""
    start = time.monotonic()
    with open(log, "ab") as fh:
        subprocess.run([sys.executable, "-m", "heliograph", "demo", "--records", str(records),
                        "--days", "30", "--seed", "16", "--config", str(config)],
                       check=True, stdout=fh, stderr=subprocess.STDOUT)
    return records / (time.monotonic() - start)


def start_gateway(procs: Procs, tmp: Path, config: Path):
    port = free_port()
    env = dict(os.environ, HELIOGRAPH_ADMIN_KEY=ADMIN_KEY, OPENAI_API_KEY="sk-bench")
    for var in ("HELIOGRAPH_CONFIG", "HELIOGRAPH_DATABASE_URL", "HELIOGRAPH_REDIS_URL"):
        env.pop(var, None)
    argv = [sys.executable, "-m", "heliograph", "serve", "--config", str(config),
            "--port", str(port), "--workers", "1"]
    return spawn_server(procs, "gateway", argv, port, tmp, 1, env, lambda _port: 0)


def get_json(port: int, path: str) -> dict:
    return json.loads(http_get(port, path, {"authorization": f"Bearer {ADMIN_KEY}"}))


def timed(port: int, path: str, runs: int) -> float | str:
    """Median milliseconds of `runs` GETs, after one warm-up; or the error it answered
    (a 504 past the query timeout)."""
    try:
        get_json(port, path)
    except RuntimeError as exc:
        return str(exc).split(": ", 1)[0].split(" -> ")[-1]
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        get_json(port, path)
        took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took)


def iso(moment: _dt.datetime) -> str:
    return urllib.parse.quote(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def longest_session(port: int, pages: int = 40) -> dict:
    """The longest session among the newest `pages` thousand (the demo makes about one
    agent run of 100-500 requests in 10,000 sessions: the issue's 500-request case)."""
    best: dict = {"requests": -1}
    cursor = ""
    for _ in range(pages):
        page = get_json(port, f"/api/v1/sessions?limit=1000{cursor}")
        best = max([best, *page["data"]], key=lambda s: s["requests"])
        if best["requests"] >= 400 or not page.get("next_cursor"):
            break
        cursor = f"&cursor={urllib.parse.quote(page['next_cursor'])}"
    return best


def queries(port: int) -> list[tuple[str, str]]:
    """(label, path) for the issue's table; parameters picked from the data itself."""
    newest = get_json(port, "/api/v1/requests?limit=1")["data"][0]["created_at"]
    end = _dt.datetime.fromisoformat(newest.replace("Z", "+00:00")) + _dt.timedelta(seconds=1)
    since = {d: iso(end - _dt.timedelta(days=d)) for d in (1, 7, 30)}
    until = iso(end)
    top_user, rare_user = first_user(port, "desc"), first_user(port, "asc")
    models = get_json(port, "/api/v1/metrics?group_by=model")["data"]
    feature = get_json(port, "/api/v1/properties?key=feature&limit=1")["data"][0]
    common = feature["values"][0]["value"]
    session = longest_session(port)
    q = urllib.parse.quote
    day_ago = f"since={since[7]}&until={iso(end - _dt.timedelta(days=6))}"
    return [
        ("requests?limit=50 (newest)", "/api/v1/requests?limit=50"),
        ("requests by model", f"/api/v1/requests?limit=50&model={q(models[0]['key'])}"),
        ("requests by top user", f"/api/v1/requests?limit=50&user_id={q(top_user)}"),
        ("requests in a time range (one day, a week ago)", f"/api/v1/requests?limit=50&{day_ago}"),
        ("requests by rare user", f"/api/v1/requests?limit=50&user_id={q(rare_user)}"),
        ("requests by property.feature (common value)",
         f"/api/v1/requests?limit=50&property.feature={q(common)}"),
        ("requests?q=<word in no record>", "/api/v1/requests?limit=50&q=zqxjvkwpfh"),
        ("metrics?group_by=model, 24 h", f"/api/v1/metrics?group_by=model&since={since[1]}"),
        ("metrics?group_by=model, 7 d", f"/api/v1/metrics?group_by=model&since={since[7]}"),
        ("metrics?group_by=model, 30 d", f"/api/v1/metrics?group_by=model&since={since[30]}"),
        ("metrics?group_by=user_id, 30 d", f"/api/v1/metrics?group_by=user_id&since={since[30]}"),
        ("metrics?group_by=property.feature, 30 d",
         f"/api/v1/metrics?group_by=property.feature&since={since[30]}"),
        ("metrics?group_by=hour, 30 d", f"/api/v1/metrics?group_by=hour&since={since[30]}"),
        ("users (all time, first page)", "/api/v1/users"),
        ("users, 7 d", f"/api/v1/users?since={since[7]}"),
        ("users, 30 d by cost", f"/api/v1/users?since={since[30]}&sort=cost_usd"),
        (f"sessions/{{id}} ({session['requests']} requests)",
         f"/api/v1/sessions/{q(session['session_id'])}"),
        ("sessions (newest 50)", "/api/v1/sessions?limit=50"),
        ("properties", "/api/v1/properties"),
        ("properties?key=feature", "/api/v1/properties?key=feature"),
        ("overview, 30 d", f"/api/v1/overview?since={since[30]}&until={until}"),
    ]


def first_user(port: int, order: str) -> str:
    """The user with the most (desc) or fewest (asc) requests."""
    try:
        return get_json(port, f"/api/v1/users?order={order}&limit=1")["data"][0]["user_id"]
    except RuntimeError:   # a gateway from before users were paged: all in one answer
        users = get_json(port, "/api/v1/users")["data"]
        return users[0 if order == "desc" else -1]["user_id"]


def db_size(url: str, schema: str = SCHEMA) -> str:
    if url.startswith("sqlite"):
        path = Path(url[len("sqlite:///"):])
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    else:
        import psycopg
        with psycopg.connect(url) as conn:
            size = conn.execute("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)"
                                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                " WHERE n.nspname = %s AND c.relkind = 'r'", (schema,)
                                ).fetchone()[0]
    return f"{int(size) / 1e6:.0f} MB"


def bench_store(name: str, url: str, args, procs: Procs, tmp: Path) -> dict:
    work = tmp / name
    work.mkdir(parents=True, exist_ok=True)
    config = work / "heliograph.toml"
    config.write_text(f'[storage]\ndatabase_url = "{url}"\n')
    result: dict = {"store": name, "records": args.records}
    if not args.reuse:
        print(f"{name}: filling {args.records:,} records …", flush=True)
        result["fill_rate"] = fill(config, args.records, work / "fill.log")
    srv = start_gateway(procs, work, config)
    try:
        count = get_json(srv.port, "/api/v1/overview")["total"]["requests"]
        result["records"] = count
        result["size"] = db_size(url, args.schema)
        result["times"] = {}
        for label, path in queries(srv.port):
            result["times"][label] = took = timed(srv.port, path, args.runs)
            print(f"  {name:10} {cell(took):>12}  {label}", flush=True)
    finally:
        procs.stop(srv.proc)
    return result


def cell(ms: float | str | None) -> str:
    if ms is None:
        return "—"
    if isinstance(ms, str):
        return f"{ms} ⚠"
    return f"{ms:.1f} ms" + (" ⚠" if ms > GOAL_MS else "")


def report(results: list[dict], args) -> str:
    stores = " | ".join(f"{r['store']} ({r['records']:,} records)" for r in results)
    head = f"| query (HTTP, median of {args.runs}) | {stores} |"
    lines = [head, "|---|" + "---|" * len(results)]
    labels = list(results[0]["times"]) if results else []
    for i, label in enumerate(labels):
        cells = []
        for r in results:
            values = list(r["times"].values())
            ms = values[i] if i < len(values) else None
            cells.append(cell(ms))
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", "| store | records | database size | fill (demo, records/s) |",
              "|---|---|---|---|"]
    for r in results:
        rate = f"{r['fill_rate']:,.0f}" if "fill_rate" in r else "(reused)"
        lines.append(f"| {r['store']} | {r['records']:,} | {r['size']} | {rate} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--sqlite-db", default=None, help="file to fill (default: a temp dir)")
    parser.add_argument("--postgres", default=os.environ.get(
        "HELIOGRAPH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--reuse", action="store_true", help="the databases are filled")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    parser.add_argument("--schema", default=SCHEMA,
                        help="PostgreSQL schema (an existing log: e.g. public, with --reuse)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "log_scale.md"))
    args = parser.parse_args(argv)
    procs = Procs()
    results = []
    with tempfile.TemporaryDirectory(prefix="heliograph-log-scale-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            for store in args.stores:
                if store == "sqlite":
                    path = Path(args.sqlite_db) if args.sqlite_db else tmp / "log.db"
                    results.append(bench_store("SQLite", f"sqlite:///{path}", args, procs, tmp))
                else:
                    results.append(bench_store("PostgreSQL", postgres_url(args), args, procs,
                                               tmp))
        finally:
            procs.stop_all()
            # Only the bench's own schema is ever dropped (never a log given by --schema).
            if "postgres" in args.stores and not args.keep and args.schema == SCHEMA:
                drop_schema(args.postgres, args.schema)
    table = report(results, args)
    print(table)
    Path(args.out).write_text(f"# Log at scale: query times\n\n{table}\n")
    return 0


def postgres_url(args) -> str:
    import psycopg
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        if not args.reuse:
            conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"')
    separator = "&" if "?" in args.postgres else "?"
    return f"{args.postgres}{separator}options=-csearch_path%3D{args.schema}"


def drop_schema(base_url: str, schema: str) -> None:
    import psycopg
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
