"""Alerts, budgets and per-request webhooks end to end: a real gateway with 2 workers
(SQLite), its background host evaluating every 0.3 s, real receivers — HTTP servers for
the webhook and Slack, aiosmtpd for email — and the official OpenAI and Anthropic SDKs.

The fake upstream's `usage-20000-10000` behaviour makes gpt-4o cost 15 cents a call
(20,000 in at $2.50/M + 10,000 out at $10/M), so thresholds are easy to cross."""

from __future__ import annotations

import time
import urllib.request
import uuid

import anthropic
import openai
import pytest
from alert_receivers import HttpReceiver, SmtpReceiver, alerts_config
from servers import ADMIN_KEY, Gateway, wait

EXPENSIVE = {"x-fake-behavior": "usage-20000-10000"}   # 15 cents on gpt-4o


@pytest.fixture(scope="module")
def smtp():
    server = SmtpReceiver()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alerts_gateway(upstream, smtp, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("alerts")
    gw = Gateway(workdir, upstream.url, f"sqlite:///{workdir / 'heliograph.db'}", workers=2,
                 extra_config=alerts_config(smtp) + """
[dashboard]
base_url = "http://dashboard.example"
""")
    yield gw
    gw.stop()


@pytest.fixture
def client(alerts_gateway):
    return openai.OpenAI(base_url=alerts_gateway.url + "/v1", api_key=ADMIN_KEY,
                         max_retries=0)


def spend(client, tag: str, user: str = "alice", model: str = "gpt-4o", **headers):
    """One request with property Test=tag; returns (status, headers, error body)."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "spend"}],
            extra_headers={"Helicone-Property-Test": tag, "Helicone-User-Id": user,
                           **EXPENSIVE, **headers})
        return raw.http_response.status_code, raw.headers, None
    except openai.APIStatusError as err:
        return err.status_code, err.response.headers, err.response.json()


def history(gw: Gateway, alert_id: str) -> list[dict]:
    status, body = gw.api(f"/api/v1/alerts/history?alert_id={alert_id}")
    assert status == 200, body
    return body["data"]


def test_a_daily_cost_rule_notifies_each_channel_once_then_resolves(alerts_gateway, client,
                                                                    smtp):
    gw = alerts_gateway
    hook, slack = HttpReceiver().start(), HttpReceiver().start()
    tag = uuid.uuid4().hex[:8]
    mailed = len(smtp.messages)
    try:
        status, rule = gw.api("/api/v1/alerts", method="POST", body={
            "name": "Daily spend", "metric": "cost", "threshold": 0.25, "window": "day",
            "filter": {"property.Test": tag},
            "channels": [{"type": "webhook", "url": hook.url},
                         {"type": "slack", "url": slack.url},
                         {"type": "email", "to": ["team@example.com"]}]})
        assert status == 201, rule
        secret = rule["channels"][0]["signing_secret"]
        assert secret.startswith("whsec_")
        hook.secret = secret
        # The secret is shown once: never listed again.
        assert "signing_secret" not in str(gw.api(f"/api/v1/alerts/{rule['id']}")[1])
        assert "whsec_" not in str(gw.api("/api/v1/alerts")[1])

        assert spend(client, tag)[0] == 200          # 15 cents: under
        time.sleep(1.0)                              # a few evaluations
        assert history(gw, rule["id"]) == []
        assert spend(client, tag)[0] == 200          # 30 cents: over
        posts = hook.wait_for(1)
        slack.wait_for(1)
        mails = smtp.wait_for(mailed + 1)

        time.sleep(1.5)  # many more evaluations: still exactly one notice each
        assert len(hook.posts) == 1 and len(slack.posts) == 1
        assert len(smtp.messages) == mailed + 1
        post = posts[0]
        assert post["signed"], post["headers"]
        event = post["body"]
        assert event["type"] == "alert.firing" and event["state"] == "firing"
        assert event["alert"]["id"] == rule["id"]
        assert event["value"] == pytest.approx(0.30) and event["threshold"] == 0.25
        link = event["dashboard_url"]   # the requests behind the number
        assert link.startswith("http://dashboard.example/dashboard/requests?")
        assert f"property.test={tag}" in link and "since=20" in link
        text = slack.posts[0]["body"]["text"]
        assert "Daily spend" in text and "$0.30" in text and "dashboard.example" in text
        assert "Heliograph-Signature" not in slack.posts[0]["headers"]
        mail = mails[-1]
        assert "Daily spend" in mail["Subject"] and mail["To"] == "team@example.com"
        assert mail.get_body(("plain",)).get_content().startswith("Firing: Daily spend")
        assert "<h2>" in mail.get_body(("html",)).get_content()

        [entry] = history(gw, rule["id"])
        assert entry["state"] == "firing" and entry["value"] == pytest.approx(0.30)
        assert entry["threshold"] == 0.25 and entry["group"] is None
        assert gw.api(f"/api/v1/alerts/{rule['id']}")[1]["firing"] == [None]

        # Raised above the spend: it falls back under, and resolves once.
        status, changed = gw.api(f"/api/v1/alerts/{rule['id']}", method="PATCH",
                                 body={"threshold": 1.0})
        assert status == 200 and changed["threshold"] == 1.0
        assert "signing_secret" not in changed["channels"][0]  # same URL, same secret
        hook.wait_for(2)
        slack.wait_for(2)
        smtp.wait_for(mailed + 2)
        time.sleep(1.0)
        assert len(hook.posts) == 2 and len(slack.posts) == 2
        assert len(smtp.messages) == mailed + 2
        assert str(smtp.messages[-1]["Subject"]).startswith("[Heliograph] Resolved")
        assert hook.posts[1]["signed"] and hook.posts[1]["body"]["state"] == "resolved"
        assert "Resolved" in slack.posts[1]["body"]["text"]
        states = [e["state"] for e in history(gw, rule["id"])]
        assert states == ["resolved", "firing"]
        deliveries = gw.api(f"/api/v1/alerts/{rule['id']}")[1]["deliveries"]
        assert len(deliveries) == 6 and {d["status"] for d in deliveries} == {"delivered"}
    finally:
        hook.stop()
        slack.stop()


def test_a_group_by_rule_fires_for_the_one_user_over_it(alerts_gateway, client):
    gw = alerts_gateway
    hook = HttpReceiver().start()
    tag = uuid.uuid4().hex[:8]
    try:
        status, rule = gw.api("/api/v1/alerts", method="POST", body={
            "name": "Any single user over 20 cents a day", "metric": "cost",
            "threshold": 0.20, "window": "day", "group_by": "user_id",
            "filter": {"property.Test": tag},
            "channels": [{"type": "webhook", "url": hook.url}]})
        assert status == 201, rule
        for user in ("alice", "bob", "carol"):
            assert spend(client, tag, user=user)[0] == 200   # 15 cents each
        assert spend(client, tag, user="bob")[0] == 200      # bob: 30 cents
        [post] = hook.wait_for(1)
        time.sleep(1.0)
        assert len(hook.posts) == 1
        assert post["body"]["group"] == "bob" and post["body"]["group_by"] == "user_id"
        [entry] = history(gw, rule["id"])
        assert entry["group"] == "bob" and entry["state"] == "firing"
    finally:
        hook.stop()


def test_a_receiver_that_is_down_is_retried_and_delivered_later(alerts_gateway, client):
    gw = alerts_gateway
    hook = HttpReceiver()             # nothing listening on its port yet
    tag = uuid.uuid4().hex[:8]
    status, rule = gw.api("/api/v1/alerts", method="POST", body={
        "name": "Requests", "metric": "requests", "threshold": 1, "window": "1h",
        "filter": {"property.Test": tag},
        "channels": [{"type": "webhook", "url": hook.url}]})
    assert status == 201
    hook.secret = rule["channels"][0]["signing_secret"]
    assert spend(client, tag, model="gpt-4o-mini")[0] == 200

    def failed_attempt():
        deliveries = gw.api(f"/api/v1/alerts/{rule['id']}")[1]["deliveries"]
        return deliveries and deliveries[0]["last_error"] and deliveries[0]
    delivery = wait(failed_attempt, what="a failed delivery attempt")
    assert delivery["status"] == "pending" and delivery["last_error"]
    hook.start()
    try:
        [post] = hook.wait_for(1, timeout=30)
        assert post["signed"] and post["body"]["state"] == "firing"
        delivered = wait(lambda: gw.api(f"/api/v1/alerts/{rule['id']}")[1]["deliveries"][0]
                         if gw.api(f"/api/v1/alerts/{rule['id']}")[1]["deliveries"][0]
                         ["status"] == "delivered" else None, what="delivered")
        assert delivered["attempts"] >= 2
    finally:
        hook.stop()


def test_an_enforced_budget_on_a_property_refuses_once_spent(alerts_gateway, client):
    gw = alerts_gateway
    workflow = f"research-agent-{uuid.uuid4().hex[:6]}"
    status, budget = gw.api("/api/v1/budgets", method="POST", body={
        "name": "Research agent", "scope": {"property.Workflow": workflow},
        "limit_usd": 0.25, "period": "day", "enforce": True})
    assert status == 201, budget
    assert budget["spend_usd"] == 0 and budget["resets_at"].endswith("Z")
    time.sleep(3)  # every worker has loaded it (they reload every 2 s)
    agent = {"Helicone-Property-Workflow": workflow}
    assert spend(client, "b", **agent)[0] == 200          # 0.15
    wait(lambda: gw.api(f"/api/v1/budgets/{budget['id']}")[1]["spend_usd"] > 0.1,
         what="spend counted")
    assert spend(client, "b", **agent)[0] == 200          # 0.30: over from now on
    wait(lambda: gw.api(f"/api/v1/budgets/{budget['id']}")[1]["exceeded"],
         what="budget exceeded")
    for _ in range(4):  # whichever worker answers
        status, headers, body = spend(client, "b", **agent)
        assert status == 429, body
        assert body["error"]["type"] == "budget_exceeded"
        assert body["error"]["code"] == "budget_exceeded"
        message = body["error"]["message"]
        assert "Research agent" in message and "$0.3000" in message
        assert "$0.2500" in message and "resets at" in message
        assert headers["x-helicone-error"] == "budget_exceeded"
        assert int(headers["retry-after"]) <= 86400
    record = gw.record(headers["helicone-id"])
    assert record["status"] == 429 and record["attempts"] == []   # no provider was paid
    with urllib.request.urlopen(gw.url + "/metrics") as resp:     # loopback: no token
        metrics = resp.read().decode()
    refusals = [line for line in metrics.splitlines()
                if line.startswith("heliograph_budget_refusals_total{")]
    assert refusals and sum(float(line.rsplit(" ", 1)[1]) for line in refusals) >= 4
    # Anthropic's SDK gets Anthropic's error shape.
    anth = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as refused:
        anth.messages.create(model="claude-3-5-haiku-latest", max_tokens=10,
                             messages=[{"role": "user", "content": "hi"}],
                             extra_headers=agent)
    err = refused.value.response.json()
    assert err["type"] == "error" and "budget_exceeded" in err["error"]["message"]
    # Every endpoint that reaches a provider is held to it, not only chat and messages.
    with pytest.raises(openai.RateLimitError) as refused_relay:
        client.completions.create(model="gpt-4o-mini", prompt="hi", extra_headers=agent)
    assert refused_relay.value.response.json()["error"]["code"] == "budget_exceeded"
    # Outside the scope, requests go on.
    assert spend(client, "b", **{"Helicone-Property-Workflow": "other"})[0] == 200
    status, listed = gw.api("/api/v1/budgets")
    assert status == 200 and [b["id"] for b in listed["data"]].count(budget["id"]) == 1
    # Lifting the limit lets the workflow through again.
    status, _ = gw.api(f"/api/v1/budgets/{budget['id']}", method="PATCH",
                       body={"limit_usd": 10})
    assert status == 200
    time.sleep(2.5)
    assert spend(client, "b", **agent)[0] == 200


def test_per_request_webhooks_are_signed_filtered_and_carry_bodies(alerts_gateway, client):
    gw = alerts_gateway
    hook = HttpReceiver().start()
    tag = uuid.uuid4().hex[:8]
    try:
        status, created = gw.api("/api/v1/webhooks", method="POST", body={
            "url": hook.url, "filter": {"property.Test": tag}, "include_bodies": True})
        assert status == 201, created
        hook.secret = created["signing_secret"]
        ids = [spend(client, tag, model="gpt-4o-mini")[1]["helicone-id"] for _ in range(3)]
        spend(client, "another-" + tag, model="gpt-4o-mini")   # filtered out
        posts = hook.wait_for(3)
        time.sleep(1.5)
        assert len(hook.posts) == 3
        assert all(p["signed"] for p in posts)
        assert sorted(p["body"]["request"]["id"] for p in posts) == sorted(ids)
        request = posts[0]["body"]["request"]
        assert request["model"] == "gpt-4o-mini" and request["status"] == 200
        properties = {k.lower(): v for k, v in request["properties"].items()}
        assert properties["test"] == tag and request["cost_usd"] > 0
        assert request["request"]["messages"][0]["content"] == "spend"
        assert request["response"]["choices"]
        status, listed = gw.api("/api/v1/webhooks")
        assert [w["id"] for w in listed["data"]].count(created["id"]) == 1
        assert "signing_secret" not in str(listed)
        assert gw.api(f"/api/v1/webhooks/{created['id']}", method="DELETE")[0] == 200
        assert gw.api(f"/api/v1/webhooks/{created['id']}")[0] == 404
    finally:
        hook.stop()


def test_the_api_refuses_bad_rules_and_non_admin_keys(alerts_gateway):
    gw = alerts_gateway
    for body, word in [({"name": "x", "metric": "vibes", "threshold": 1}, "metric"),
                       ({"name": "x", "metric": "cost", "threshold": -1}, "threshold"),
                       ({"name": "x", "metric": "cost", "threshold": 1, "window": "2h"},
                        "window"),
                       ({"name": "x", "metric": "cost", "threshold": 1,
                         "channels": [{"type": "pager"}]}, "type"),
                       ({"name": "x", "metric": "cost", "threshold": 1,
                         "filter": {"q": "x"}}, "filter")]:
        status, error = gw.api("/api/v1/alerts", method="POST", body=body)
        assert status == 400 and word in error["error"]["message"], error
    status, error = gw.api("/api/v1/budgets", method="POST",
                           body={"name": "b", "limit_usd": 0})
    assert status == 400 and "limit_usd" in error["error"]["message"]
    assert gw.api("/api/v1/alerts/alert_nope")[0] == 404
    key = gw.cli("keys", "create", "--name", "reader").stdout.strip().splitlines()[-1]
    status, error = gw.api("/api/v1/alerts", key=key)
    assert status == 403 and error["error"]["type"] == "permission_error"


def test_no_per_request_webhook_is_lost_when_the_gateway_is_killed(alerts_gateway, client):
    """Runs last in this module: it kills the module's gateway (and its background host)
    right after the answers, then starts it again."""
    gw = alerts_gateway
    hook = HttpReceiver().start()
    tag = uuid.uuid4().hex[:8]
    try:
        status, created = gw.api("/api/v1/webhooks", method="POST", body={
            "url": hook.url, "filter": {"property.Test": tag}})
        assert status == 201
        hook.secret = created["signing_secret"]
        ids = {spend(client, tag, model="gpt-4o-mini")[1]["helicone-id"] for _ in range(8)}
        gw.kill()
        gw.start()
        posts = hook.wait_for(8, timeout=30)
        time.sleep(1.5)
        assert {p["body"]["request"]["id"] for p in hook.posts} == ids
        assert len(hook.posts) == 8 and all(p["signed"] for p in posts)
    finally:
        hook.stop()
