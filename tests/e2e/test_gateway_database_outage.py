"""PostgreSQL unreachable for a while (a relay between the gateway and the database, cut):
keys used before keep working, shared state on the database fails over (cache misses,
rate limits degraded), every request is answered 200 with its Helicone-Id and journaled,
and every record is in the database after it returns.

OUTAGE_S is short for CI; the issue's 60 s outage was run once by hand with
HELIOGRAPH_TEST_OUTAGE_S=60: 1494 requests during the outage, all 200 and all stored
afterwards, the slowest 2.0 s (the first after the cut, waiting out a connection); shared
state back 1.1 s and key lookups 1.2 s after the database.
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import openai
import pytest
from servers import ADMIN_KEY
from tcp_relay import gateway_behind_relay

OUTAGE_S = float(os.environ.get("HELIOGRAPH_TEST_OUTAGE_S", "12"))
# The longest any one request may take while the database is away.
MAX_ANSWER_S = 5.0
# The longest the query API may take to say the database is away.
MAX_OUTAGE_QUERY_S = 3.0


@pytest.fixture
def relayed_gateway(upstream, tmp_path):
    with gateway_behind_relay(upstream.url, tmp_path) as gateway_and_relay:
        yield gateway_and_relay


def ask(client, text, **headers):
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}],
        extra_headers=headers)
    took = time.monotonic() - started
    assert raw.parse().choices[0].message.content == f"Echo: {text}"
    return raw, took


def test_serving_never_waits_on_an_unreachable_database(relayed_gateway):
    gw, relay = relayed_gateway
    created = gw.cli("keys", "create", "--name", "team", "--org", "team")
    assert created.returncode == 0, created.stderr
    team_key = created.stdout.strip().splitlines()[-1]
    unused = gw.cli("keys", "create", "--name", "unused", "--org", "team")
    unused_key = unused.stdout.strip().splitlines()[-1]
    clients = [openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0,
                             timeout=30) for key in (ADMIN_KEY, team_key)]
    shared = {"Helicone-Cache-Enabled": "true", "Helicone-User-Id": "u1",
              "Helicone-RateLimit-Policy": "1000;w=60;s=user"}
    ids = {}  # helicone-id → the key that asked
    for client in clients:
        raw, _ = ask(client, "before", **shared)
        assert raw.headers.get("helicone-ratelimit-status") != "degraded"
        ids[raw.headers["helicone-id"]] = client.api_key

    relay.cut()
    outage_started = time.monotonic()
    slowest, degraded = 0.0, 0
    n = 0
    while time.monotonic() - outage_started < OUTAGE_S:
        client = clients[n % 2]
        chosen = str(uuid.uuid4()) if n % 5 == 0 else None  # its own id: not checkable now
        headers = dict(shared, **({"Helicone-Request-Id": chosen} if chosen else {}))
        raw, took = ask(client, f"during {n}", **headers)
        slowest = max(slowest, took)
        assert raw.headers["helicone-id"] == (chosen or raw.headers["helicone-id"])
        ids[raw.headers["helicone-id"]] = client.api_key
        degraded += raw.headers.get("helicone-ratelimit-status") == "degraded"
        n += 1
    # A key never seen by this process cannot be checked: a clear 503, not a hang.
    never_seen = openai.OpenAI(base_url=gw.url + "/v1", api_key=unused_key, max_retries=0,
                               timeout=30)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as refused:
        ask(never_seen, "unknown during outage")
    assert refused.value.status_code == 503
    assert refused.value.body["code"] == "service_unavailable"
    assert time.monotonic() - started < MAX_ANSWER_S
    assert slowest < MAX_ANSWER_S, f"a request took {slowest:.1f} s during the outage"
    assert n >= 10 and degraded >= n - 2  # shared state failed over, and said so

    relay.restore()
    back = time.monotonic()
    while True:
        raw, _ = ask(clients[0], f"after {uuid.uuid4()}", **shared)
        ids[raw.headers["helicone-id"]] = ADMIN_KEY
        if raw.headers.get("helicone-ratelimit-status") != "degraded":
            break
        assert time.monotonic() - back < 5, "shared state not back 5 s after the database"
        time.sleep(0.1)
    recovery = time.monotonic() - back
    while True:  # key lookups reach the store again (the first may still be skipped)
        try:
            ask(never_seen, "unknown key after the outage")
            break
        except openai.APIStatusError as exc:
            assert exc.status_code == 503
            assert time.monotonic() - back < 5, "key lookups not back 5 s after the database"
            time.sleep(0.1)
    key_recovery = time.monotonic() - back

    deadline = time.monotonic() + 30 + OUTAGE_S  # the writer retries with backoff
    for request_id, key in ids.items():
        rec = gw.record(request_id, key=key, timeout=max(1.0, deadline - time.monotonic()))
        assert rec["status"] == 200
    print(f"{n} requests during a {OUTAGE_S:.0f} s outage, slowest {slowest:.2f} s; "
          f"shared state back {recovery:.2f} s and key lookups {key_recovery:.2f} s "
          "after the database")


def test_a_revoked_key_stops_working_once_the_database_is_back(relayed_gateway):
    gw, relay = relayed_gateway
    created = gw.cli("keys", "create", "--name", "leaver", "--org", "team")
    key = created.stdout.strip().splitlines()[-1]
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=30)
    ask(client, "hello")
    relay.cut()
    ask(client, "still known")
    relay.restore()
    key_id = [row for row in gw.cli("keys", "list").stdout.splitlines()
              if "leaver" in row][0].split()[0]
    assert gw.cli("keys", "revoke", key_id).returncode == 0
    deadline = time.monotonic() + 12  # KEY_CACHE_TTL_S, plus a lookup
    while True:
        try:
            ask(client, "revoked?")
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.5)


def query_api(gw, path):
    """(status, body, Retry-After, seconds taken) of one query-API call."""
    req = urllib.request.Request(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, body, headers = resp.status, json.load(resp), resp.headers
    except urllib.error.HTTPError as err:
        status, body, headers = err.code, json.loads(err.read() or b"null"), err.headers
    return status, body, headers.get("Retry-After"), time.monotonic() - started


def test_the_query_api_answers_503_at_once_while_the_database_is_away(relayed_gateway):
    gw, relay = relayed_gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0,
                           timeout=30)
    raw, _ = ask(client, "before the outage")
    gw.record(raw.headers["helicone-id"])  # the analytics pool holds a connection now

    relay.cut()
    slowest = 0.0
    for path in ("/api/v1/requests", "/api/v1/metrics", "/api/v1/requests"):
        status, body, retry_after, took = query_api(gw, path)
        assert status == 503, (path, status, body)
        assert body["error"]["code"] == "service_unavailable"
        assert body["error"]["type"] == "server_error"
        assert retry_after is not None and int(retry_after) >= 1
        assert took < MAX_OUTAGE_QUERY_S, f"{path} took {took:.1f} s to say 503"
        slowest = max(slowest, took)

    relay.restore()
    back = time.monotonic()
    while True:
        status, body, _, took = query_api(gw, "/api/v1/requests")
        if status == 200:
            break
        assert status == 503, (status, body)
        assert time.monotonic() - back < 5, "the query API not back 5 s after the database"
        time.sleep(0.1)
    assert raw.headers["helicone-id"] in [r["id"] for r in body["data"]]
    print(f"query API: 503 within {slowest:.2f} s during the outage, back "
          f"{time.monotonic() - back:.2f} s after the database")
