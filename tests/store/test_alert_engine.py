"""The alert engine on each store (SQLite and PostgreSQL): the SQL aggregates a rule
compares with its threshold, crossings (fire once, resolve once), the webhook feed filled
in the writer's transaction, delivery with retries against a real HTTP receiver, and
budget counters in the real shared state with a clock that can move to the next day."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from alert_receivers import HttpReceiver

from heliograph.alerts import repo
from heliograph.alerts.budgets import Budgets
from heliograph.alerts.channels import SmtpSettings
from heliograph.alerts.delivery import MAX_ATTEMPTS, drain_feed, send_due
from heliograph.alerts.evaluator import evaluate_all
from heliograph.alerts.model import check_budget, check_rule, check_webhook, request_filter
from heliograph.analytics._aggregate import p95_nearest_rank
from heliograph.analytics.alert_values import window_totals
from heliograph.errors import BudgetExceeded
from heliograph.state.sql_state import SqlState

NOON = dt.datetime(2024, 3, 4, 12, tzinfo=dt.UTC).timestamp()
DAY_START, DAY_END = "2024-03-04T00:00:00.000000Z", "2024-03-05T00:00:00.000000Z"


def at(minute: int) -> str:
    return f"2024-03-04T10:{minute:02d}:00.000000Z"


def spend_records(make_record, n: int = 10, **fields):
    return [make_record(f"r{i}-{fields.get('user_id', '')}", at(i), cost_usd=0.1,
                        cost_known=True, total_tokens=100, latency_ms=float(10 * (i + 1)),
                        status=500 if i % 5 == 0 else 200,
                        properties={"Workflow": "agent"}, **fields)
            for i in range(n)]


def test_window_totals_group_in_sql_and_match_the_query_api(store, make_record):
    store.insert_records(spend_records(make_record, 10, user_id="alice", key_id="k1")
                         + spend_records(make_record, 3, user_id="bob", key_id="k2")
                         + [make_record("other-org", at(1), organization="org2",
                                        cost_usd=5.0, cost_known=True, user_id="alice")])
    flt = request_filter({"property.workflow": "agent"})
    by_user = window_totals(store, "org1", flt, "user_id", DAY_START, DAY_END, with_p95=True)
    assert set(by_user) == {"alice", "bob"}
    alice = by_user["alice"]
    assert (alice.requests, alice.errors, alice.tokens) == (10, 2, 1000)
    assert alice.cost_usd == pytest.approx(1.0)
    assert alice.value("error_rate") == pytest.approx(0.2)
    assert alice.p95_latency_ms == p95_nearest_rank([10.0 * (i + 1) for i in range(10)])
    assert by_user["bob"].p95_latency_ms == 30.0
    [(key, total)] = window_totals(store, "org1", request_filter({}), None, DAY_START,
                                   DAY_END).items()
    assert key == "" and total.requests == 13 and total.cost_usd == pytest.approx(1.3)
    by_property = window_totals(store, "org1", request_filter({}), "property.workflow",
                                DAY_START, DAY_END)
    assert by_property["agent"].requests == 13
    only_k2 = window_totals(store, "org1", request_filter({}), None, DAY_START, DAY_END,
                            key_id="k2")
    assert only_k2[""].requests == 3
    empty = window_totals(store, "org1", request_filter({}), None, DAY_END,
                          "2024-03-06T00:00:00.000000Z")
    assert empty[""].requests == 0


def test_a_rule_fires_once_per_group_and_resolves_once(store, make_record):
    hook = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}
    rule = check_rule({"name": "user spend", "metric": "cost", "threshold": 0.5,
                       "window": "day", "group_by": "user_id", "channels": [hook]}, "org1")
    repo.save_rule(store, rule)
    store.insert_records(spend_records(make_record, 10, user_id="alice")
                         + spend_records(make_record, 2, user_id="bob"))
    assert evaluate_all(store, NOON) == 1          # alice crosses; bob (0.2) does not
    assert evaluate_all(store, NOON + 60) == 0     # still over: nothing new
    [entry] = repo.list_history(store, "org1", rule.id)
    assert entry["group"] == "alice" and entry["state"] == "firing"
    assert len(repo.due_deliveries(store, NOON + 60)) == 1
    # The next day the window is empty: alice resolves, once.
    tomorrow = NOON + 86400
    assert evaluate_all(store, tomorrow) == 1
    assert evaluate_all(store, tomorrow + 60) == 0
    assert [e["state"] for e in repo.list_history(store, "org1", rule.id)] == [
        "resolved", "firing"]
    assert len(repo.due_deliveries(store, tomorrow + 60)) == 2


def test_rate_metrics_wait_for_min_requests(store, make_record):
    rule = check_rule({"name": "errors", "metric": "error_rate", "threshold": 0.1,
                       "window": "day", "min_requests": 20}, "org1")
    repo.save_rule(store, rule)
    store.insert_records(spend_records(make_record, 10, user_id="alice"))  # 20% errors
    assert evaluate_all(store, NOON) == 0
    store.insert_records(spend_records(make_record, 10, user_id="carol"))
    assert evaluate_all(store, NOON) == 1


def test_budget_thresholds_fire_each_once(store, make_record):
    budget = check_budget({"name": "agent", "scope": {"property.Workflow": "agent"},
                           "limit_usd": 1.0, "period": "day", "alert_at": [50, 100]}, "org1")
    repo.save_budget(store, budget)
    store.insert_records(spend_records(make_record, 6, user_id="alice"))   # $0.60
    assert evaluate_all(store, NOON) == 1
    store.insert_records(spend_records(make_record, 6, user_id="bob"))     # $1.20
    assert evaluate_all(store, NOON + 60) == 1
    history = repo.list_history(store, "org1", budget.id)
    assert [e["threshold"] for e in history] == [1.0, 0.5]
    assert repo.states(store, f"{budget.id}@50") == {"": True}
    assert repo.delete_budget(store, "org1", budget.id)
    assert repo.states(store, f"{budget.id}@50") == {}
    assert not repo.delete_budget(store, "org1", budget.id)


def test_the_webhook_feed_is_written_with_the_records_and_delivered(store, reader,
                                                                     make_record):
    receiver = HttpReceiver().start()
    try:
        hook = check_webhook({"url": receiver.url, "filter": {"property.Workflow": "agent"}},
                             "org1")
        repo.save_webhook(store, hook)
        receiver.secret = hook.secret
        records = spend_records(make_record, 3, user_id="alice")
        records.append(make_record("no-workflow", at(30)))
        store.insert_records(records)
        store.insert_records(records)  # a journal replay feeds nothing twice
        assert drain_feed(store, reader) == 4
        assert drain_feed(store, reader) == 0
        assert send_due(store, SmtpSettings()) == 3
        posts = receiver.wait_for(3)
        assert all(p["signed"] for p in posts)
        assert {p["body"]["request"]["id"] for p in posts} == {r["id"] for r in records[:3]}
        assert "request" not in posts[0]["body"]["request"]  # bodies only when asked
        assert send_due(store, SmtpSettings()) == 0
        deliveries = repo.list_deliveries(store, "org1", hook.id)
        assert {d["status"] for d in deliveries} == {"delivered"}
    finally:
        receiver.stop()


def test_a_failing_delivery_backs_off_then_gives_up_recorded(store):
    down = HttpReceiver()  # never started
    with store.transaction(write=True) as cur:
        repo.enqueue(store, cur, "org1", "alert_x",
                     [({"type": "webhook", "url": down.url, "secret": "s"},
                       {"json": {"hello": 1}})], NOON)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [item] = repo.due_deliveries(store, float("inf"))
        assert item["attempts"] == attempt - 1
        send_due(store, SmtpSettings(), now=float("inf"))
    assert repo.due_deliveries(store, float("inf")) == []
    [delivery] = repo.list_deliveries(store, "org1", "alert_x")
    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_ATTEMPTS
    assert down.url in delivery["last_error"]


@pytest.mark.parametrize("period", ["day", "1h"])
def test_an_enforced_budget_refuses_until_the_next_period(migrated_url, store, period):
    # Real time: the shared state sweeps events that expired by the wall clock.
    start = time.time()
    clock = [start]
    budget = check_budget({"name": "agent", "scope": {"property.Workflow": "agent"},
                           "limit_usd": 0.25, "period": period, "enforce": True}, "org1")
    repo.save_budget(store, budget)

    async def scenario():
        state = SqlState(migrated_url)
        budgets = Budgets(store, "UTC", clock=lambda: clock[0])
        await budgets.start(state)
        await budgets.reload()
        try:
            in_scope = {"organization": "org1", "properties": {"workflow": "agent"}}
            other = {"organization": "org1", "properties": {"workflow": "chat"}}
            await budgets.check("org1", in_scope)
            for cost in (0.15, 0.0, 0.15):  # the 0.0: a cache hit, free
                budgets.accept({**in_scope, "cost_usd": cost})
                await budgets.drain()
            spent, resets = await budgets.spend(budget)
            assert spent == pytest.approx(0.30)
            with pytest.raises(BudgetExceeded) as refused:
                await budgets.check("org1", in_scope)
            assert refused.value.status == 429 and "$0.3000" in refused.value.message
            await budgets.check("org1", other)            # out of scope
            clock[0] = resets + 1 if period == "day" else start + 3601
            await budgets.check("org1", in_scope)          # the next period: allowed
        finally:
            await state.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("fail_open", [True, False])
def test_unreachable_counters_follow_the_rate_limits_fail_open_choice(store, fail_open):
    from servers import free_port

    from heliograph.state.redis_state import RedisState

    budget = check_budget({"name": "org", "limit_usd": 1, "period": "month",
                           "enforce": True}, "org1")
    repo.save_budget(store, budget)

    async def scenario():
        state = RedisState(f"redis://127.0.0.1:{free_port()}/0", fail_open=fail_open)
        budgets = Budgets(store)
        await budgets.start(state)
        await budgets.reload()
        try:
            await budgets.check("org1", {"organization": "org1", "properties": {}})
        finally:
            await budgets.drain()
            await state.close()

    if fail_open:
        asyncio.run(scenario())          # nothing known: served
    else:
        with pytest.raises(BudgetExceeded, match="cannot be checked"):
            asyncio.run(scenario())


def test_a_crossing_is_recorded_once_even_by_two_overlapping_evaluators(store):
    """During a deployment-lock handover two evaluators may both see a rule cross; the
    state's compare-and-set lets one of them record and notify it."""
    notice = [({"type": "slack", "url": "http://127.0.0.1:9/"}, {"slack": {"text": "x"}})]
    args = ("org1", "alert_1", "alert_1", "alice")
    assert repo.record_change(store, *args, None, True, 2.0, 1.0, notice, NOON)
    assert not repo.record_change(store, *args, None, True, 2.0, 1.0, notice, NOON)
    assert repo.record_change(store, *args, True, False, 0.5, 1.0, notice, NOON + 1)
    assert not repo.record_change(store, *args, True, False, 0.5, 1.0, notice, NOON + 1)
    assert len(repo.list_history(store, "org1", "alert_1")) == 2
    assert len(repo.due_deliveries(store, NOON + 2)) == 2


def test_a_delivery_is_claimed_by_one_sender_and_due_again_if_it_dies(store):
    with store.transaction(write=True) as cur:
        repo.enqueue(store, cur, "org1", "alert_1",
                     [({"type": "slack", "url": "http://127.0.0.1:9/"}, {"slack": {}})], NOON)
    [item] = repo.due_deliveries(store, NOON)
    taken = repo.claim(store, item, NOON, 60)
    assert taken is not None and taken["attempts"] == 1
    assert repo.claim(store, item, NOON, 60) is None          # the other sender
    assert repo.due_deliveries(store, NOON + 30) == []        # leased
    [again] = repo.due_deliveries(store, NOON + 61)           # its sender died
    assert again["attempts"] == 1
