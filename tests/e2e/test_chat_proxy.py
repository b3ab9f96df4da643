"""Chat completions through the real gateway with the official openai SDK."""

import asyncio
import uuid

import openai
import pytest
from servers import ADMIN_KEY

from heliograph import costs


def test_sync_chat_is_proxied_and_logged_with_cost(gateway, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there gateway"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there gateway"
    record_id = raw.headers["helicone-id"]
    uuid.UUID(record_id)
    assert raw.headers["x-ratelimit-limit-requests"]
    rec = gateway.record(record_id)
    assert rec["status"] == 200 and rec["error"] is None
    assert rec["model"] == "gpt-4o-mini" and rec["provider"] == "openai"
    assert rec["path"] == "/v1/chat/completions"
    assert rec["prompt_tokens"] == completion.usage.prompt_tokens > 0
    assert rec["completion_tokens"] == completion.usage.completion_tokens > 0
    assert rec["total_tokens"] == completion.usage.total_tokens
    expected = costs.cost_of("openai", completion.model, costs.Usage(
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens))
    assert rec["cost_known"] is True and rec["cost_usd"] == pytest.approx(expected.usd)
    assert rec["cost_usd"] > 0
    assert rec["latency_ms"] > 0 and rec["ttft_ms"] is None
    assert rec["request"]["messages"][0]["content"] == "hello there gateway"
    assert rec["response"]["choices"][0]["message"]["content"] == "Echo: hello there gateway"
    assert rec["attempts"] == [{"model": "gpt-4o-mini", "provider": "openai", "status": 200,
                                "latency_ms": rec["attempts"][0]["latency_ms"], "error": None}]
    assert rec["ratelimit"]["limit_requests"]
    assert rec["organization"] == "default" and rec["key_id"]
    assert rec["created_at"].endswith("Z")


def test_async_client(gateway):
    async def go():
        # Closed in the loop that opened its connections: left to the garbage collector, the
        # SDK's client closes itself on whatever loop runs then (the in-process tier's).
        async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=ADMIN_KEY,
                                      max_retries=0) as client:
            results = await asyncio.gather(*(
                client.chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"async {i}"}])
                for i in range(5)))
        return [(r.headers["helicone-id"], r.parse()) for r in results]

    results = asyncio.run(go())
    for i, (record_id, completion) in enumerate(results):
        assert completion.choices[0].message.content == f"Echo: async {i}"
        assert gateway.record(record_id)["response"]["choices"][0]["message"]["content"] \
            == f"Echo: async {i}"


def test_base_url_without_v1_posts_to_chat_completions(gateway):
    client = openai.OpenAI(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "no v1"}])
    assert raw.parse().choices[0].message.content == "Echo: no v1"
    assert gateway.record(raw.headers["helicone-id"])["path"] == "/chat/completions"


def test_stream_without_usage_requested_looks_exactly_as_asked(gateway, openai_client, upstream):
    upstream.clear()
    stream = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": "stream me four words"}])
    record_id = stream.headers["helicone-id"]
    chunks = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me four words"
    assert len(chunks) > 3
    # The caller did not ask for usage: no usage chunk, no usage field.
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert all("usage" not in c.model_dump(exclude_unset=True) for c in chunks)
    # ...but the gateway asked the provider for it, and logged it.
    sent = [r for r in upstream.received() if r["path"].endswith("/chat/completions")][-1]
    assert sent["body"]["stream_options"] == {"include_usage": True}
    rec = gateway.record(record_id)
    assert rec["status"] == 200
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
    assert rec["cost_known"] is True and rec["cost_usd"] > 0
    assert rec["ttft_ms"] is not None and 0 < rec["ttft_ms"] <= rec["latency_ms"]
    assert rec["response"]["choices"][0]["message"]["content"] == text
    assert "stream_options" not in rec["request"]  # what the caller sent


def test_openai_obfuscated_stream_relays_its_chunks_and_logs_the_usage(gateway, openai_client):
    # OpenAI's chunks today: `…,"usage":null,"obfuscation":"<random>"}` (the fake's
    # `obfuscation` behaviour). The usage the gateway asked for is cut out of every chunk
    # and the last usage chunk dropped; the obfuscation string reaches the caller.
    stream = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini-fake-obfuscation", stream=True,
        messages=[{"role": "user", "content": "obfuscated stream of words"}])
    chunks = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: obfuscated stream of words"
    dumped = [c.model_dump(exclude_unset=True) for c in chunks]
    assert all("usage" not in c and c["obfuscation"] for c in dumped), dumped
    assert all(c.choices for c in chunks)
    rec = gateway.record(stream.headers["helicone-id"])
    assert rec["status"] == 200
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
    assert rec["response"]["choices"][0]["message"]["content"] == text


def test_stream_with_usage_requested_keeps_the_usage_chunk(gateway, openai_client):
    stream = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "count please"}])
    chunks = list(stream.parse())
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
    rec = gateway.record(stream.headers["helicone-id"])
    assert rec["completion_tokens"] == usage_chunks[0].usage.completion_tokens


def test_streamed_tool_call_is_reassembled_in_the_log(gateway, openai_client):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object",
                                              "properties": {"city": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": "what is the weather in Paris"}]
    plain = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                  tools=tools)
    stream = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, tools=tools, stream=True)
    arguments = ""
    for chunk in stream.parse():
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                arguments += call.function.arguments or ""
    assert arguments == plain.choices[0].message.tool_calls[0].function.arguments
    rec = gateway.record(stream.headers["helicone-id"])
    logged = rec["response"]["choices"][0]["message"]["tool_calls"][0]
    assert logged["function"]["name"] == "get_weather"
    assert logged["function"]["arguments"] == arguments
    assert rec["response"]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("model, provider, upstream_model", [
    ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("gpt-4o-mini/openai", "openai", "gpt-4o-mini"),
    ("llama-3.3-70b-versatile", "groq", "llama-3.3-70b-versatile"),
    ("groq/llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
    ("mistral-small-latest", "mistral", "mistral-small-latest"),
    ("llama3.2", "local", "llama3.2"),
])
def test_model_routing(gateway, openai_client, upstream, model, provider, upstream_model):
    upstream.clear()
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "route"}])
    assert raw.parse().model == upstream_model
    sent = upstream.received()[-1]
    assert sent["body"]["model"] == upstream_model
    expected_auth = {"openai": "Bearer sk-upstream-openai", "groq": "Bearer sk-upstream-groq",
                     "mistral": "Bearer sk-upstream-mistral"}.get(provider)
    assert sent["headers"].get("authorization") == expected_auth
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["model"] == model and rec["provider"] == provider
    assert rec["model_used"] == upstream_model


def test_gateway_key_and_helicone_headers_never_reach_the_provider(gateway, openai_client,
                                                                   upstream):
    upstream.clear()
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "secret"}],
        extra_headers={"Helicone-Property-Team": "core", "Helicone-User-Id": "u1",
                       "X-Custom-Passthrough": "kept"})
    sent = upstream.received()[-1]
    names = {name.lower() for name in sent["headers"]}
    assert not [n for n in names if n.startswith("helicone-")]
    assert sent["headers"]["authorization"] == "Bearer sk-upstream-openai"
    assert ADMIN_KEY not in str(sent["headers"])
    assert sent["headers"].get("x-custom-passthrough") == "kept"


def test_bring_your_own_key(gateway, upstream):
    upstream.clear()
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-callers-own-key",
                           default_headers={"Helicone-Auth": f"Bearer {ADMIN_KEY}"},
                           max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "byok"}])
    assert raw.parse().choices[0].message.content == "Echo: byok"
    assert upstream.received()[-1]["headers"]["authorization"] == "Bearer sk-callers-own-key"
    assert gateway.record(raw.headers["helicone-id"])["status"] == 200


def test_byok_with_a_bad_provider_key_relays_the_providers_401(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-bad",
                           default_headers={"Helicone-Auth": f"Bearer {ADMIN_KEY}"},
                           max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert "Incorrect API key" in str(info.value)
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert rec["status"] == 401 and "Incorrect API key" in rec["error"]
