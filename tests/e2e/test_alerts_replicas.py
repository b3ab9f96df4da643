"""Two replicas — one with 2 workers, one with 1 — sharing PostgreSQL and Redis, each with
its own background host: a rule crossing notifies each channel exactly once (one
evaluator and one sender per deployment), and a budget spent through one replica is
refused by the other (the spend counter lives in Redis)."""

from __future__ import annotations

import os
import time
import uuid

import openai
import pytest
from alert_receivers import HttpReceiver
from servers import ADMIN_KEY, Gateway, postgres_database

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HELIOGRAPH_TEST_REDIS_URL")
EXPENSIVE = {"x-fake-behavior": "usage-20000-10000"}   # 15 cents on gpt-4o


def own_redis_database(url: str) -> str:
    """The same Redis server, another logical database: deployment locks are named per
    Redis, so other gateways of the test session must not hold this deployment's."""
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/11"


@pytest.fixture(scope="module")
def replicas(upstream, tmp_path_factory):
    if not POSTGRES_URL or not REDIS_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL and HELIOGRAPH_TEST_REDIS_URL needed")
    database_url, drop = postgres_database(POSTGRES_URL)
    env = {"HELIOGRAPH_REDIS_URL": own_redis_database(REDIS_URL)}
    config = "\n[alerts]\ninterval_s = 0.3\n"
    started = []
    try:
        for name, workers in (("a", 2), ("b", 1)):
            started.append(Gateway(tmp_path_factory.mktemp(f"replica-{name}"), upstream.url,
                                   database_url, workers=workers, extra_config=config,
                                   env=env))
        yield started
    finally:
        for gw in started:
            gw.stop()
        drop()


def call(gw: Gateway, **headers) -> int:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user",
                                                                  "content": "hi"}],
                                       extra_headers={**EXPENSIVE, **headers})
        return 200
    except openai.APIStatusError as err:
        return err.status_code


def test_a_crossing_is_notified_exactly_once_across_replicas(replicas):
    a, b = replicas
    hook = HttpReceiver().start()
    tag = uuid.uuid4().hex[:8]
    try:
        status, rule = a.api("/api/v1/alerts", method="POST", body={
            "name": "Replicated", "metric": "requests", "threshold": 4, "window": "1h",
            "filter": {"property.Test": tag},
            "channels": [{"type": "webhook", "url": hook.url}]})
        assert status == 201
        hook.secret = rule["channels"][0]["signing_secret"]
        for gw in (a, b, a, b):
            assert call(gw, **{"Helicone-Property-Test": tag}) == 200
        [post] = hook.wait_for(1)
        time.sleep(3)  # ten evaluations on each host: still one notice
        assert len(hook.posts) == 1 and post["signed"]
        assert post["body"]["value"] == 4
        assert len(b.api(f"/api/v1/alerts/history?alert_id={rule['id']}")[1]["data"]) == 1
    finally:
        hook.stop()


def test_a_budget_spent_on_one_replica_is_enforced_on_the_other(replicas):
    a, b = replicas
    workflow = "research-agent-" + uuid.uuid4().hex[:6]
    agent = {"Helicone-Property-Workflow": workflow}
    status, budget = a.api("/api/v1/budgets", method="POST", body={
        "name": "agent", "scope": {"property.Workflow": workflow}, "limit_usd": 0.25,
        "period": "day", "enforce": True})
    assert status == 201
    time.sleep(3)                         # every worker of both replicas has it
    assert call(a, **agent) == 200        # 0.15
    assert call(a, **agent) == 200        # 0.30
    deadline = time.monotonic() + 10
    while b.api(f"/api/v1/budgets/{budget['id']}")[1]["spend_usd"] < 0.25:
        assert time.monotonic() < deadline, "spend never reached the other replica"
        time.sleep(0.1)
    assert [call(b, **agent) for _ in range(3)] == [429] * 3
    assert call(a, **agent) == 429
    assert call(b, **{"Helicone-Property-Workflow": "other"}) == 200
