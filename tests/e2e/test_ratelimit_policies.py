"""Helicone-RateLimit-Policy: exact across the workers of one server (and replicas with
Redis); over the limit is a logged 429."""

import concurrent.futures
import time
import uuid

import openai
import pytest


def call(client, policy, user, model="gpt-4o-mini", **headers):
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "limit me"}],
            extra_headers={"Helicone-RateLimit-Policy": policy, "Helicone-User-Id": user,
                           **headers})
        return raw.http_response.status_code, raw.headers
    except openai.RateLimitError as err:
        return 429, err.response.headers


def test_five_per_minute_across_two_workers_lets_exactly_five_pass(state_gateway,
                                                                   state_client):
    user = "limited-" + uuid.uuid4().hex[:8]
    policy = "5;w=60;u=request;s=user"
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: call(state_client, policy, user), range(12)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 5 + [429] * 7
    ok_headers = [h for s, h in results if s == 200][0]
    assert ok_headers["helicone-ratelimit-limit"] == "5"
    assert ok_headers["helicone-ratelimit-policy"] == "5;w=60;u=request"  # Helicone's echo
    limited = [h for s, h in results if s == 429]
    assert all(h["x-helicone-error"] == "rate_limited" for h in limited)
    assert all(h["helicone-ratelimit-remaining"] == "0" for h in limited)
    rec = state_gateway.record(limited[0]["helicone-id"])
    assert rec["status"] == 429 and "rate limit" in rec["error"].lower()
    assert rec["attempts"] == []
    # Another user has a budget of their own.
    assert call(state_client, policy, user + "-other")[0] == 200


def test_cents_policy_stops_a_user_once_their_cost_crosses_the_quota(state_gateway,
                                                                     state_client):
    user = "spender-" + uuid.uuid4().hex[:8]
    policy = "10;w=3600;u=cents;s=user"
    # gpt-4o at 20,000 in + 10,000 out tokens costs 5 + 10 = 15 cents: over after one call.
    big = {"x-fake-behavior": "usage-20000-10000"}
    status, headers = call(state_client, policy, user, "gpt-4o", **big)
    assert status == 200
    first = state_gateway.record(headers["helicone-id"])
    assert first["cost_usd"] * 100 > 10
    deadline = time.monotonic() + 5
    while True:
        status, headers = call(state_client, policy, user, "gpt-4o", **big)
        if status == 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 429 and headers["x-helicone-error"] == "rate_limited"
    assert call(state_client, policy, user + "-frugal", "gpt-4o", **big)[0] == 200


@pytest.mark.parametrize("policy, fragment", [
    ("abc;w=60", "quota"),
    ("5;w=0", "w"),
    ("5;w=60;u=dollars", "u"),
    ("5", "w"),
])
def test_malformed_policy_is_a_400_that_says_what_is_wrong(state_client, policy, fragment):
    with pytest.raises(openai.BadRequestError) as info:
        state_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            extra_headers={"Helicone-RateLimit-Policy": policy})
    message = info.value.response.json()["error"]["message"]
    assert policy in message or fragment in message
