"""Helicone-Request-Id is unique within an organization: another organization choosing the
same id keeps both records (each with its own properties), and an organization reusing
one of its ids gets a fresh UUID in Helicone-Id — no record is ever dropped."""

import json
import uuid

import openai


def org_client(gateway, org: str) -> openai.OpenAI:
    created = gateway.cli("keys", "create", "--name", org, "--org", org)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def ask(client, request_id: str, team: str) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": team}],
        extra_headers={"Helicone-Request-Id": request_id, "Helicone-Property-Team": team})
    assert raw.parse().choices[0].message.content == f"Echo: {team}"
    return raw.headers["helicone-id"]


def test_two_organizations_may_choose_the_same_id(gateway):
    tag = uuid.uuid4().hex[:8]
    alpha, beta = org_client(gateway, f"alpha-{tag}"), org_client(gateway, f"beta-{tag}")
    request_id = str(uuid.uuid4())
    assert ask(alpha, request_id, "red") == request_id
    assert ask(beta, request_id, "blue") == request_id  # another organization's id

    for client, mine, theirs in ((alpha, "red", "blue"), (beta, "blue", "red")):
        rec = gateway.record(request_id, key=client.api_key)
        assert rec["organization"] in (f"alpha-{tag}", f"beta-{tag}")
        assert rec["properties"] == {"team": mine}
        status, metrics = gateway.api("/api/v1/metrics?group_by=property.team",
                                      key=client.api_key)
        assert status == 200
        text = json.dumps(metrics)
        assert mine in text and theirs not in text
        status, listed = gateway.api(f"/api/v1/requests?property.team={theirs}",
                                     key=client.api_key)
        assert status == 200 and listed["data"] == []
        status, listed = gateway.api(f"/api/v1/requests?property.team={mine}",
                                     key=client.api_key)
        assert [r["id"] for r in listed["data"]] == [request_id]


def test_an_organization_reusing_an_id_gets_a_fresh_one(gateway):
    tag = uuid.uuid4().hex[:8]
    client = org_client(gateway, f"reuse-{tag}")
    request_id = str(uuid.uuid4())
    assert ask(client, request_id, "first") == request_id
    second = ask(client, request_id, "second")  # still in the journal, maybe
    assert second != request_id and uuid.UUID(second).version == 7
    gateway.record(request_id, key=client.api_key)  # the first is in the database now
    third = ask(client, request_id, "third")
    assert third not in (request_id, second)

    assert gateway.record(request_id, key=client.api_key)["properties"] == {"team": "first"}
    assert gateway.record(second, key=client.api_key)["properties"] == {"team": "second"}
    # The second record says which id it asked for; the first does not.
    assert gateway.record(second, key=client.api_key)["requested_id"] == request_id
    assert gateway.record(request_id, key=client.api_key)["requested_id"] is None
    assert gateway.record(third, key=client.api_key)["properties"] == {"team": "third"}
