"""Micro-benchmark: what budgets cost a request on the hot path.

    python bench/budget_check.py                                  # SQLite shared state
    python bench/budget_check.py --redis redis://127.0.0.1:6379/0 # + Redis
    python bench/budget_check.py --postgres postgresql://postgres@127.0.0.1:5432/test

Three cases per shared-state backend, each the median over N calls of what the pipeline
runs (heliograph/proxy/pipeline.py `_answer`):
  - no budget in the organization: the set-membership test alone;
  - enforced budgets in the organization, the request outside their scope: the scope match;
  - the request inside an enforced budget's scope: one shared-state round trip.
Plus the record sink's cost (accept(), which only queues the counter update).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from heliograph.alerts import repo
from heliograph.alerts.budgets import Budgets
from heliograph.alerts.model import check_budget
from heliograph.store import open_store

N = 2000


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def _bench(database_url: str, redis_url: str) -> dict[str, float]:
    from heliograph.state import open_state

    class Settings:  # what open_state reads
        pass

    settings = Settings()
    settings.redis_url = redis_url            # type: ignore[attr-defined]
    settings.database_url = database_url      # type: ignore[attr-defined]
    store = open_store(database_url)
    org = "bench-" + str(time.time_ns())
    budget = check_budget({"name": "agent", "scope": {"property.Workflow": "agent"},
                           "limit_usd": 1e9, "period": "day", "enforce": True}, org)
    repo.save_budget(store, budget)
    state = open_state(settings, store=store)
    budgets = Budgets(store)
    await budgets.start(state)
    await budgets.reload()
    inside = {"organization": org, "key_id": "k", "user_id": "u",
              "properties": {"Workflow": "agent"}}
    outside = {**inside, "properties": {"Workflow": "chat"}}
    results = {}
    try:
        for _ in range(200):  # warm-up: connections, caches
            await budgets.check(org, inside)
        for name, record, organization in (("no budget in the organization", inside, "x"),
                                           ("out of every budget's scope", outside, org),
                                           ("in an enforced budget's scope", inside, org)):
            samples = []
            for _ in range(N):
                t0 = time.perf_counter()
                if organization in budgets.enforced:
                    await budgets.check(organization, record)
                samples.append(time.perf_counter() - t0)
            results[name] = _median_us(samples)
        samples = []
        for i in range(N):
            t0 = time.perf_counter()
            budgets.accept({**inside, "cost_usd": 0.001})
            samples.append(time.perf_counter() - t0)
            if i % 20 == 19:  # as requests finish over time, not 2000 writes at once
                await budgets.drain()
        results["record sink accept (queues the add)"] = _median_us(samples)
    finally:
        await budgets.drain()
        repo.delete_budget(store, org, budget.id)
        await state.close()
        store.close()
    return results


@contextlib.contextmanager
def _own_schema(url: str) -> Iterator[str]:
    """A schema of its own on the server (never the database's public one), dropped after."""
    import psycopg

    schema = f"hg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _report(label: str, database_url: str, redis_url: str) -> None:
    print(f"{label}: median µs per request ({N} calls)")
    for name, us in asyncio.run(_bench(database_url, redis_url)).items():
        print(f"  {name:40s} {us:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="")
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    sqlite = f"sqlite:///{Path(tempfile.mkdtemp(prefix='hg-budget-')) / 'bench.db'}"
    _report("SQLite state", sqlite, "")
    if args.postgres:
        with _own_schema(args.postgres) as url:
            _report("PostgreSQL state", url, "")
    if args.redis:
        _report("Redis state", sqlite, args.redis)


if __name__ == "__main__":
    main()
