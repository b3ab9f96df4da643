"""Helicone's REST query API over records made through the real proxy: the filter tree
(and/or, equals/not-equals/like/ilike/contains/gt/gte/lt/lte, properties), sort, offset
and limit; sessions, users and user metrics; feedback and scores in Helicone's shape."""

from __future__ import annotations

import uuid

import openai
import pytest


@pytest.fixture
def tagged(gateway, openai_client):
    """Four calls under a fresh tag: two gpt-4o-mini by user a in session a, one gpt-4o
    and one refused (429) call by user b in session b. Their ids, oldest first."""
    tag = uuid.uuid4().hex[:8]
    calls = [("gpt-4o-mini", "a"), ("gpt-4o-mini", "a"), ("gpt-4o", "b"),
             ("gpt-4o-mini-fake-status-429", "b")]
    ids = []
    for model, who in calls:
        headers = {"Helicone-Property-Tag": tag, "Helicone-User-Id": f"{who}-{tag}",
                   "Helicone-Session-Id": f"{who}-{tag}", "Helicone-Session-Name": f"run {who}"}
        try:
            raw = openai_client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": f"helicone api {tag}"}],
                extra_headers=headers)
            ids.append(raw.headers["helicone-id"])
        except openai.RateLimitError as refused:
            ids.append(refused.response.headers["helicone-id"])
    for request_id in ids:
        gateway.record(request_id)
    return tag, ids


def query(gateway, body, path="/v1/request/query"):
    status, answer = gateway.api(path, method="POST", body=body)
    assert status == 200, answer
    assert answer["error"] is None
    return answer["data"]


def scoped(tag, node=None):
    leaf = {"properties": {"tag": {"equals": tag}}}
    return leaf if node is None else {"left": leaf, "operator": "and", "right": node}


def ids_of(gateway, tag, node=None, **extra):
    return [r["request_id"] for r in query(gateway, {"filter": scoped(tag, node), **extra})]


def test_request_query_filters_sorts_and_pages(gateway, tagged):
    tag, ids = tagged
    rows = query(gateway, {"filter": scoped(tag), "sort": {"created_at": "asc"}})
    assert [r["request_id"] for r in rows] == ids
    first = rows[0]
    assert first["request_model"] == "gpt-4o-mini" and first["provider"] == "OPENAI"
    assert first["request_user_id"] == f"a-{tag}" and first["response_status"] == 200
    assert first["request_properties"] == {"tag": tag}
    assert first["costUSD"] > 0 and first["prompt_tokens"] > 0 and first["delay_ms"] > 0
    assert first["request_body"]["messages"][0]["content"] == f"helicone api {tag}"
    assert first["response_body"]["choices"]
    rmt = "request_response_rmt"
    assert set(ids_of(gateway, tag, {rmt: {"model": {"equals": "gpt-4o"}}})) == {ids[2]}
    assert set(ids_of(gateway, tag, {rmt: {"status": {"not-equals": 200}}})) == {ids[3]}
    either = {"left": {rmt: {"model": {"equals": "gpt-4o"}}}, "operator": "or",
              "right": {rmt: {"status": {"gte": 400}}}}
    assert set(ids_of(gateway, tag, either)) == {ids[2], ids[3]}
    # like is case-sensitive (on both stores), ilike and contains are not.
    assert set(ids_of(gateway, tag, {rmt: {"model": {"like": "gpt-4o-m%"}}})) == \
        {ids[0], ids[1], ids[3]}
    assert ids_of(gateway, tag, {rmt: {"model": {"like": "GPT-4O%"}}}) == []
    assert set(ids_of(gateway, tag, {rmt: {"model": {"ilike": "GPT-4O-MINI"}}})) == \
        {ids[0], ids[1]}
    assert set(ids_of(gateway, tag, {"request": {"model": {"contains": "MINI"}}})) == \
        {ids[0], ids[1], ids[3]}
    assert set(ids_of(gateway, tag, {rmt: {"model": {"not-contains": "mini"}}})) == {ids[2]}
    assert set(ids_of(gateway, tag, {rmt: {"cost": {"gt": 0}, "latency": {"gte": 0}}})) == \
        set(ids[:3])
    assert set(ids_of(gateway, tag, {rmt: {"user_id": {"equals": f"b-{tag}"}}})) == \
        set(ids[2:])
    assert ids_of(gateway, tag, {rmt: {"properties": {"tag": {"not-equals": tag}}}}) == []
    assert ids_of(gateway, tag, sort={"created_at": "asc"}, offset=1, limit=2) == ids[1:3]
    by_cost = query(gateway, {"filter": scoped(tag), "sort": {"cost": "desc"}})
    assert by_cost[0]["request_id"] == ids[2] and by_cost[-1]["request_id"] == ids[3]
    assert query(gateway, {"filter": scoped(tag), "sort": {"created_at": "asc"}},
                 "/v1/request/query-clickhouse") == rows


@pytest.mark.parametrize("body, named", [
    ({"filter": {"request_response_rmt": {"country_code": {"equals": "FR"}}}},
     "country_code"),
    ({"filter": {"request_response_rmt": {"model": {"between": "a"}}}}, "between"),
    ({"filter": {"request_response_rmt": {"latency": {"gt": "slow"}}}}, "latency"),
    ({"filter": {"nonsense": {}}}, "nonsense"),
    ({"filter": {"left": "all", "operator": "xor", "right": "all"}}, "xor"),
    ({"filter": "all", "sort": {"latency": "sideways"}}, "sort"),
    ({"filter": "all", "limit": 0}, "limit"),
    ({"filter": "all", "colour": "blue"}, "colour"),
])
def test_request_query_refuses_what_it_does_not_understand(gateway, body, named):
    status, answer = gateway.api("/v1/request/query", method="POST", body=body)
    assert status == 400 and named in answer["error"]["message"]


def test_feedback_and_scores_answer_in_helicone_shape_and_filter(gateway, tagged):
    tag, ids = tagged
    status, answer = gateway.api(f"/v1/request/{ids[1]}/feedback", method="POST",
                                 body={"rating": True})
    assert status == 200 and answer["data"] is None and answer["error"] is None
    status, answer = gateway.api(f"/v1/request/{ids[1]}/score", method="POST",
                                 body={"scores": {"accuracy": 90, "helpful": True}})
    assert status == 200 and answer["error"] is None
    assert ids_of(gateway, tag, {"feedback": {"rating": {"equals": True}}}) == [ids[1]]
    row = query(gateway, {"filter": scoped(tag, {"request_response_rmt": {
        "helicone-score-feedback": {"equals": True}}})})[0]
    assert row["feedback_rating"] is True
    assert row["scores"] == {"accuracy": 90, "helpful": True}


def test_session_query(gateway, tagged):
    tag, ids = tagged
    sessions = query(gateway, {"search": tag, "timeFilter": {"startTimeUnixMs": 0,
                                                             "endTimeUnixMs": 4e12},
                               "timezoneDifference": 0, "filter": "all"}, "/v1/session/query")
    by_id = {s["session_id"]: s for s in sessions}
    assert set(by_id) == {f"a-{tag}", f"b-{tag}"}
    assert by_id[f"a-{tag}"]["total_requests"] == 2
    assert by_id[f"a-{tag}"]["session_name"] == "run a"
    assert by_id[f"a-{tag}"]["total_cost"] > 0 and by_id[f"a-{tag}"]["total_tokens"] > 0
    assert sessions[0]["session_id"] == f"b-{tag}"  # latest activity first
    named = query(gateway, {"search": tag, "nameEquals": "run a", "filter": "all",
                            "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": 4e12},
                            "timezoneDifference": 0}, "/v1/session/query")
    assert [s["session_id"] for s in named] == [f"a-{tag}"]


def test_user_query_and_user_metrics(gateway, tagged):
    tag, _ = tagged
    users = query(gateway, {"userIds": [f"a-{tag}", f"b-{tag}", "nobody"]}, "/v1/user/query")
    by_id = {u["user_id"]: u for u in users}
    assert set(by_id) == {f"a-{tag}", f"b-{tag}"}
    assert by_id[f"a-{tag}"]["count"] == 2 and by_id[f"a-{tag}"]["cost"] > 0
    assert query(gateway, {"userIds": [f"a-{tag}"], "timeFilter": {
        "startTimeUnixSeconds": 0, "endTimeUnixSeconds": 1}}, "/v1/user/query") == []
    metrics = query(gateway, {
        "filter": {"left": {"users_view": {"user_total_requests": {"gte": 2}}},
                   "operator": "and", "right": {"properties": {"tag": {"equals": tag}}}},
        "offset": 0, "limit": 10, "sort": {"cost": "desc"}}, "/v1/user/metrics/query")
    assert metrics["count"] == 2 and metrics["hasUsers"] is True
    assert [u["user_id"] for u in metrics["users"]] == [f"b-{tag}", f"a-{tag}"]
    assert metrics["users"][0]["total_requests"] == 2
    assert metrics["users"][0]["active_for"] == 1
    only_a = query(gateway, {"filter": scoped(tag, {"users_view": {
        "user_user_id": {"equals": f"a-{tag}"}}}), "offset": 0, "limit": 10},
        "/v1/user/metrics/query")
    assert [u["user_id"] for u in only_a["users"]] == [f"a-{tag}"]
