"""POST /v1/messages/count_tokens: the `anthropic` SDK's messages.count_tokens through the
gateway — Anthropic's own count for Anthropic models, an Anthropic-shaped 400 for the
others, and a logged record that bills nothing."""

import anthropic
import pytest
from servers import ADMIN_KEY

MESSAGES = [{"role": "user", "content": "How many tokens is this sentence?"}]


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)


def direct_count(upstream, **body):
    """What the (fake) provider itself answers, asked directly."""
    direct = anthropic.Anthropic(base_url=upstream.url, api_key="sk-direct", max_retries=0)
    return direct.messages.count_tokens(**body).input_tokens


@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest",
                                   "anthropic/claude-3-5-haiku-latest"])
def test_count_is_the_providers_and_bills_nothing(gateway, upstream, client, model):
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    raw = client.messages.with_raw_response.count_tokens(
        model=model, messages=MESSAGES, system="Be brief.", tools=tools,
        extra_headers={"Helicone-Property-Feature": "counter"})
    counted = raw.parse()
    expected = direct_count(upstream, model="claude-3-5-haiku-latest", messages=MESSAGES,
                            system="Be brief.", tools=tools)
    assert counted.input_tokens == expected > 0
    record = gateway.record(raw.headers["helicone-id"])
    assert record["path"] == "/v1/messages/count_tokens"
    assert record["status"] == 200 and record["provider"] == "anthropic"
    assert record["response"] == {"input_tokens": expected}
    assert record["request"]["system"] == "Be brief."
    assert (record["cost_usd"], record["cost_known"], record["prompt_tokens"]) == (0.0, True, 0)
    assert record["properties"] == {"feature": "counter"}


def test_other_providers_cannot_count(gateway, client):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.with_raw_response.count_tokens(model="gpt-4o-mini",
                                                       messages=MESSAGES)
    error = caught.value
    assert error.body["type"] == "error"
    assert "cannot count tokens" in error.body["error"]["message"]
    record = gateway.record(error.response.headers["helicone-id"])
    assert record["status"] == 400 and "cannot count tokens" in record["error"]


def test_missing_messages_is_a_400_and_provider_errors_are_relayed(gateway, client):
    with pytest.raises(anthropic.BadRequestError) as no_messages:
        client.messages.count_tokens(model="claude-3-5-haiku-latest", messages=[])
    assert "messages" in no_messages.value.body["error"]["message"]
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.count_tokens(model="claude-3-5-haiku-latest",
                                     messages=MESSAGES,
                                     extra_headers={"x-fake-behavior": "status-429"})
    assert limited.value.body["type"] == "error"
