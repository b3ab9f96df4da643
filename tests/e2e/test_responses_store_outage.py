"""Stored responses while PostgreSQL is unreachable (a relay between the gateway and the
database, cut): a new answer is still served (only its storing fails, logged), while
what needs a stored response — previous_response_id, GET /v1/responses/{id} — is a 503
saying so, quickly, never a 500 or a hang; all of it works again once the database is
back."""

import time

import openai
import pytest
from servers import ADMIN_KEY
from tcp_relay import gateway_behind_relay

MAX_ANSWER_S = 5.0
MODEL = "claude-3-5-haiku-latest"


@pytest.fixture
def relayed_gateway(upstream, tmp_path):
    with gateway_behind_relay(upstream.url, tmp_path) as gateway_and_relay:
        yield gateway_and_relay


def test_stored_responses_ride_out_a_database_outage(relayed_gateway):
    gw, relay = relayed_gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0,
                           timeout=30)
    before = client.responses.create(model=MODEL, input="before the outage")
    relay.cut()
    started = time.monotonic()
    during = client.responses.create(model=MODEL, input="during the outage")
    assert during.output_text == "Echo: during the outage"
    assert time.monotonic() - started < MAX_ANSWER_S
    for attempt in (lambda: client.responses.retrieve(before.id),
                    lambda: client.responses.create(model=MODEL, input="and?",
                                                    previous_response_id=before.id)):
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as info:
            attempt()
        assert info.value.status_code == 503 and time.monotonic() - started < MAX_ANSWER_S
    assert "could not store response " + during.id in gw.log_text()
    relay.restore()
    deadline = time.monotonic() + 30
    while True:
        try:
            assert client.responses.retrieve(before.id).id == before.id
            break
        except openai.InternalServerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    follow = client.responses.create(model=MODEL, input="and?", previous_response_id=before.id)
    assert follow.output_text == "Echo: and?"
