"""The query API over records made through the real proxy, scoped by organization."""

import time
import uuid

import openai
from servers import ADMIN_KEY


def tagged_calls(client, tag, n=3):
    ids = []
    for i in range(n):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini" if i % 2 == 0 else "gpt-4o",
            messages=[{"role": "user", "content": f"query api {tag} {i}"}],
            extra_headers={"Helicone-Property-Tag": tag, "Helicone-User-Id": f"user-{tag}"})
        ids.append(raw.headers["helicone-id"])
    return ids


def test_list_filter_and_paginate(gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    ids = tagged_calls(openai_client, tag, 5)
    for rid in ids:
        gateway.record(rid)
    status, body = gateway.api(f"/api/v1/requests?property.Tag={tag}&limit=2")
    assert status == 200 and len(body["data"]) == 2 and body["next_cursor"]
    seen = [r["id"] for r in body["data"]]
    while body["next_cursor"]:
        status, body = gateway.api(
            f"/api/v1/requests?property.tag={tag}&limit=2&cursor={body['next_cursor']}")
        seen += [r["id"] for r in body["data"]]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    status, body = gateway.api(f"/api/v1/requests?property.TAG={tag}&model=gpt-4o")
    assert {r["id"] for r in body["data"]} == {ids[1], ids[3]}
    assert all(r["request"] is None for r in body["data"])  # bodies only on the detail call
    status, body = gateway.api(f"/api/v1/requests?user_id=user-{tag}&status=200")
    assert len(body["data"]) == 5
    # Text search runs behind the writer (the search-index job): found within seconds.
    deadline = time.monotonic() + 10
    while not (body := gateway.api(f"/api/v1/requests?q=query%20api%20{tag}%203")[1])["data"]:
        assert time.monotonic() < deadline, "never indexed"
        time.sleep(0.1)
    assert [r["id"] for r in body["data"]] == [ids[3]]
    status, body = gateway.api("/api/v1/requests?since=2999-01-01T00:00:00Z")
    assert body["data"] == []


def test_metrics_group_by_model(gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    ids = tagged_calls(openai_client, tag, 4)
    records = [gateway.record(rid) for rid in ids]
    status, body = gateway.api(f"/api/v1/metrics?group_by=model&property.tag={tag}")
    assert status == 200
    groups = {g["key"]: g for g in body["data"]}
    assert groups["gpt-4o-mini"]["requests"] == 2 and groups["gpt-4o"]["requests"] == 2
    assert body["total"]["requests"] == 4 and body["total"]["errors"] == 0
    assert abs(body["total"]["cost_usd"] - sum(r["cost_usd"] for r in records)) < 1e-12
    assert body["total"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in records)
    status, body = gateway.api(f"/api/v1/metrics?group_by=property.Tag&property.tag={tag}")
    assert [g["key"] for g in body["data"]] == [tag]
    status, body = gateway.api("/api/v1/metrics?group_by=day")
    assert status == 200 and body["data"][0]["key"][:2] == "20"
    status, body = gateway.api("/api/v1/metrics?group_by=nonsense")
    assert status == 400 and body["error"]["message"]


def test_users_endpoints(gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    for rid in tagged_calls(openai_client, tag, 3):
        gateway.record(rid)
    status, body = gateway.api(f"/api/v1/users/user-{tag}")
    assert status == 200 and body["requests"] == 3
    assert body["models"] == {"gpt-4o-mini": 2, "gpt-4o": 1}
    status, body = gateway.api("/api/v1/users?limit=1000")
    assert any(u["user_id"] == f"user-{tag}" for u in body["data"])
    # A page at a time, ties by user id: every user once, in order of requests.
    pages, cursor = [], None
    while True:
        status, page = gateway.api("/api/v1/users?limit=2" + (f"&cursor={cursor}" if cursor
                                                             else ""))
        assert status == 200 and len(page["data"]) <= 2
        pages += page["data"]
        if not (cursor := page["next_cursor"]):
            break
    assert [u["user_id"] for u in pages] == [u["user_id"] for u in body["data"]]
    assert [(-u["requests"], u["user_id"]) for u in pages] == sorted(
        (-u["requests"], u["user_id"]) for u in pages)
    assert gateway.api("/api/v1/users/nobody-" + tag)[0] == 404


def test_organizations_see_only_their_own_records(gateway, openai_client):
    created = gateway.cli("keys", "create", "--name", "other-team", "--org", "other")
    assert created.returncode == 0, created.stderr
    other_key = created.stdout.strip().splitlines()[-1]
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "default org"}])
    default_id = raw.headers["helicone-id"]
    gateway.record(default_id)
    other = openai.OpenAI(base_url=gateway.url + "/v1", api_key=other_key, max_retries=0)
    raw = other.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "other org"}])
    other_id = raw.headers["helicone-id"]
    rec = gateway.record(other_id, key=other_key)
    assert rec["organization"] == "other"
    assert gateway.api(f"/api/v1/requests/{default_id}", key=other_key)[0] == 404
    assert gateway.api(f"/api/v1/requests/{other_id}", key=ADMIN_KEY)[0] == 404
    _, listed = gateway.api("/api/v1/requests?limit=1000", key=other_key)
    assert [r["id"] for r in listed["data"]] == [other_id]


def test_feedback_and_scores(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "rate me"}])
    rid = raw.headers["helicone-id"]
    gateway.record(rid)
    assert gateway.api(f"/v1/request/{rid}/feedback", method="POST",
                       body={"rating": True})[0] == 200
    assert gateway.api(f"/v1/request/{rid}/score", method="POST",
                       body={"scores": {"accuracy": 0.9}})[0] == 200
    rec = gateway.record(rid)
    assert rec["feedback"] is True and rec["scores"] == {"accuracy": 0.9}
    assert gateway.api(f"/v1/request/{rid}/feedback", method="POST",
                       body={"rating": "yes"})[0] == 400


def test_query_api_requires_a_key(gateway):
    assert gateway.api("/api/v1/requests", key="sk-hg-nope")[0] == 401
