"""`heliograph demo`: history generated through the real CLI into SQLite and PostgreSQL and
read back through a real gateway's query API; determinism with --seed; --live through a
real gateway and the fake upstream."""

import collections
import datetime as dt
import os
import re
import subprocess
import sys
import time

import pytest
from servers import ADMIN_KEY, Gateway, postgres_database

from heliograph.analytics import open_analytics
from heliograph.analytics.filters import RequestFilter

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
UNPRICED_MODELS = {"llama3.2"}  # served by a local (ollama) provider: no list price


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'demo.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
    url, drop = postgres_database(POSTGRES_URL)
    yield url
    drop()


def run_demo(tmp_path, database_url: str, *args: str, timeout: float = 300):
    config = tmp_path / f"demo-{abs(hash(database_url))}.toml"
    config.write_text(f'[storage]\ndatabase_url = "{database_url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOGRAPH_")}
    return subprocess.run([sys.executable, "-m", "heliograph", "demo", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=tmp_path)


def summary_of(stdout: str) -> dict:
    values = dict(re.findall(r"^([a-z ]+):\s+\$?([0-9.]+)", stdout, re.M))
    return {"records": int(values["records"]), "users": int(values["users"]),
            "sessions": int(values["sessions"]), "errors": int(values["errors"]),
            "cache hits": int(values["cache hits"]), "cost": float(values["total cost"])}


def all_requests(gateway, query: str = "") -> list[dict]:
    status, body = gateway.api(f"/api/v1/requests?limit=1000{query}")
    assert status == 200, body
    out = body["data"]
    while body["next_cursor"]:
        status, body = gateway.api(f"/api/v1/requests?limit=1000{query}"
                                   f"&cursor={body['next_cursor']}")
        out += body["data"]
    return out


def analyzed_tables(database_url: str) -> set[str]:
    """The tables the query planner has statistics for."""
    if database_url.startswith("sqlite:"):
        import sqlite3
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                                ).fetchone():
                return set()
            return {t for (t,) in conn.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
        finally:
            conn.close()
    import psycopg
    with psycopg.connect(database_url) as conn:
        return {t for (t,) in conn.execute(
            "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = current_schema()")}


def test_demo_history_reads_back_like_real_traffic(tmp_path, upstream, fresh_database):
    done = run_demo(tmp_path, fresh_database, "--records", "2000", "--days", "7",
                    "--seed", "11")
    assert done.returncode == 0, done.stderr
    printed = summary_of(done.stdout)
    assert printed["records"] == 2000 and "records/s" in done.stdout
    # The command leaves planner statistics behind, before any gateway's job runs.
    assert "planner statistics:" in done.stdout
    assert analyzed_tables(fresh_database) >= {"requests", "request_properties"}
    (tmp_path / "gw").mkdir()
    gw = Gateway(tmp_path / "gw", upstream.url, fresh_database)
    try:
        status, metrics = gw.api("/api/v1/metrics?group_by=model")
        assert status == 200
        total = metrics["total"]
        assert total["requests"] == 2000 and total["errors"] == printed["errors"] > 0
        assert total["cache_hits"] == printed["cache hits"] > 0
        assert abs(total["cost_usd"] - printed["cost"]) < 1e-5 and printed["cost"] > 0
        assert len(metrics["data"]) >= 10  # many models

        records = all_requests(gw)
        assert len(records) == 2000 and len({r["id"] for r in records}) == 2000
        # Priced like the gateway prices: every answered call of a listed model is known.
        for r in records:
            if r["status"] == 200 and r["model_used"] not in UNPRICED_MODELS:
                assert r["cost_known"] is True and r["cost_usd"] is not None, r
            if r["model_used"] in UNPRICED_MODELS:
                assert r["cost_known"] is False
        providers = {r["provider"] for r in records}
        assert {"openai", "anthropic", "gemini", "groq"} <= providers

        # Spread over the last 7 days, busier in working hours than at night (UTC).
        times = [dt.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
                 for r in records]
        now = dt.datetime.now(dt.UTC)
        assert max(times) <= now and min(times) >= now - dt.timedelta(days=7, minutes=5)
        assert len({t.date() for t in times}) >= 7
        hours = collections.Counter(t.hour for t in times)
        assert sum(hours[h] for h in range(12, 17)) > 3 * sum(hours[h] for h in range(0, 5))

        # Errors as the pipeline logs them: message, status, and the attempts made.
        errors = [r for r in records if r["status"] >= 400]
        assert {429, 500, 502, 400} <= {r["status"] for r in errors}
        assert all(r["error"] and r["attempts"] and r["attempts"][-1]["status"] == r["status"]
                   for r in errors)
        assert any(len(r["attempts"]) > 1 for r in errors)                  # retried
        assert any(r["fallback_index"] == 1 and r["status"] == 200 for r in records)
        assert any(r["ratelimit"] and r["ratelimit"].get("remaining_requests") == "0"
                   for r in errors if r["status"] == 429)

        hits = all_requests(gw, "&cache=hit")
        assert len(hits) == printed["cache hits"]
        assert all(r["attempts"] == [] for r in hits)
        assert all(r["cost_usd"] == 0 for r in hits if r["cost_known"])
        assert any(r["cost_saved_usd"] > 0 for r in hits)
        streams = [r for r in records if r["ttft_ms"] is not None]
        assert streams and all(0 < r["ttft_ms"] <= r["latency_ms"] for r in streams)
        assert any(r["feedback"] is not None for r in records)
        assert any(r["scores"] for r in records)
        assert any(r["path"] == "/v1/messages" for r in records)

        # Users: Zipf-like, a few heavy users and a long tail of rare ones.
        status, users = gw.api("/api/v1/users?limit=1000")
        assert status == 200 and len(users["data"]) == printed["users"] >= 20
        counts = [u["requests"] for u in users["data"]]
        assert counts[0] > 5 * counts[len(counts) // 2]

        # Sessions with nested paths and names, properties with skewed values.
        session_ids = {r["session_id"] for r in records if r["session_id"]}
        assert len(session_ids) == printed["sessions"] > 0
        deep = next(r for r in records if r["session_path"] and r["session_path"].count("/") > 1)
        status, session = gw.api(f"/api/v1/sessions/{deep['session_id']}")
        assert status == 200 and session["name"] and session["tree"]
        status, by_env = gw.api("/api/v1/metrics?group_by=property.environment")
        env = {g["key"]: g["requests"] for g in by_env["data"]}
        assert env["production"] > env["staging"] > 0

        # Bodies: OpenAI (or Anthropic) shapes of realistic size, usage matching the record.
        status, full = gw.api(f"/api/v1/requests/{deep['id']}")
        assert status == 200 and full["request"]["messages"]
        size = len(str(full["request"])) + len(str(full["response"]))
        assert 1000 <= size <= 6000
        if full["status"] == 200 and full["path"] == "/v1/chat/completions":
            assert full["response"]["usage"]["prompt_tokens"] == full["prompt_tokens"]
    finally:
        gw.stop()


def _everything(database_url: str) -> list[dict]:
    reader = open_analytics(database_url)
    try:
        out, cursor = [], None
        while True:
            page, cursor = reader.list_requests("default", RequestFilter(), 1000, cursor,
                                                with_bodies=True)
            out += page
            if not cursor:
                return out
    finally:
        reader.close()


def test_demo_is_deterministic_with_a_seed(tmp_path):
    until = "2026-03-04T12:00:00Z"
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    for url, seed in zip(urls, ("5", "5", "6"), strict=True):
        done = run_demo(tmp_path, url, "--records", "500", "--days", "3", "--seed", seed,
                        "--until", until)
        assert done.returncode == 0, done.stderr
    first, second, other = (_everything(url) for url in urls)
    assert len(first) == 500 and first == second
    assert max(r["created_at"] for r in first) <= "2026-03-04T12:00:00.000000Z"
    assert {r["id"] for r in first}.isdisjoint({r["id"] for r in other})


def test_demo_rejects_bad_arguments_and_an_unreachable_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for args in (["--records", "0"], ["--days", "-1"], ["--until", "yesterday"], ["--live"]):
        done = run_demo(tmp_path, url, *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
    unreachable = run_demo(tmp_path, "postgresql://postgres@127.0.0.1:1/nowhere",
                           "--records", "10")
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr
    assert "demo failed" in unreachable.stderr and "127.0.0.1" in unreachable.stderr


def test_demo_live_sends_real_requests_through_the_gateway(tmp_path, gateway):
    done = subprocess.run(
        [sys.executable, "-m", "heliograph", "demo", "--live", "--url", gateway.url,
         "--key", ADMIN_KEY, "--rate", "8", "--duration", "4", "--seed", "3", "--every", "5"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sent, ok = map(int, re.search(r"done: (\d+) sent, (\d+) ok", done.stdout).groups())
    assert sent >= 10 and ok >= sent * 0.8
    progress = re.findall(r"^(\d+) sent, ", done.stdout, re.M)  # a line every 5 requests
    assert progress[:2] == ["5", "10"]
    records = []
    for _ in range(100):
        records = all_requests(gateway, "&property.source=demo-live")
        if len(records) >= sent:
            break
        time.sleep(0.1)
    assert len(records) == sent
    assert all(r["user_id"] and r["properties"]["environment"] for r in records)
    assert any(r["session_id"] and r["session_path"] and r["session_name"] and
               r["properties"].get("workflow") for r in records)
    assert any(r["ttft_ms"] is not None for r in records)             # streams
    assert any(r["cache"] is not None for r in records)               # cache-enabled
    assert all(r["status"] == 200 for r in records if r["cache"] == "hit")
