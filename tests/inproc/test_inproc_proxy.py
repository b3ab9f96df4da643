"""Chat through the in-process gateway with the real SDKs: OpenAI plain and streamed,
OpenAI-format calls translated to Anthropic, and the Anthropic front (`/v1/messages`)."""

from __future__ import annotations

import uuid

import pytest
from harness import ADMIN_KEY

pytestmark = pytest.mark.anyio


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def received_by_fake(fake_provider, marker: str) -> dict:
    """The one request the fake upstream received whose body carries `marker`."""
    found = [r for r in fake_provider.requests() if marker in str(r["body"])]
    assert len(found) == 1, found
    return found[0]


async def test_chat_is_answered_and_logged_with_tokens_and_cost(inproc):
    content = unique("hello gateway")
    raw = await inproc.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    assert raw.parse().choices[0].message.content == f"Echo: {content}"
    rec = await inproc.record(raw.headers["helicone-id"])
    assert (rec["status"], rec["provider"], rec["model"]) == (200, "openai", "gpt-4o-mini")
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0 and rec["cost_usd"] > 0
    assert rec["request"]["messages"][0]["content"] == content


async def test_streamed_chat_delivers_the_content_and_logs_usage(inproc):
    content = unique("stream me")
    stream = await inproc.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Echo: {content}"
    request_id = stream.response.headers["helicone-id"]
    rec = await inproc.record(request_id)
    assert rec["status"] == 200 and rec["completion_tokens"] > 0 and rec["cost_usd"] > 0


async def test_openai_call_to_claude_is_translated_to_anthropic_messages(inproc, fake_provider):
    content = unique("translate me")
    raw = await inproc.openai().chat.completions.with_raw_response.create(
        model="claude-3-5-haiku-latest", max_tokens=64,
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": content}])
    answer = raw.parse()
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == f"Echo: {content}"
    upstream = received_by_fake(fake_provider, content)
    assert upstream["path"] == "/v1/messages"  # Anthropic's wire format, not OpenAI's
    rec = await inproc.record(raw.headers["helicone-id"])
    assert rec["provider"] == "anthropic" and rec["status"] == 200


async def test_streamed_openai_call_to_claude_is_translated(inproc):
    content = unique("stream translate")
    stream = await inproc.openai().chat.completions.create(
        model="claude-3-5-haiku-latest", max_tokens=64, stream=True,
        messages=[{"role": "user", "content": content}])
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == f"Echo: {content}"


@pytest.mark.parametrize("model, provider", [("claude-3-5-haiku-latest", "anthropic"),
                                             ("gpt-4o-mini", "openai")])
async def test_anthropic_sdk_through_the_messages_front(inproc, fake_provider, model,
                                                         provider):
    content = unique("hello claude")
    raw = await inproc.anthropic().messages.with_raw_response.create(
        model=model, max_tokens=64, system="be brief",
        messages=[{"role": "user", "content": content}])
    message = await raw.parse()  # the async anthropic SDK parses asynchronously
    assert message.type == "message" and message.content[0].text == f"Echo: {content}"
    assert message.stop_reason == "end_turn" and message.usage.input_tokens > 0
    upstream_path = received_by_fake(fake_provider, content)["path"]
    assert upstream_path == ("/v1/messages" if provider == "anthropic"
                             else "/v1/chat/completions")
    rec = await inproc.record(raw.headers["helicone-id"])
    assert (rec["provider"], rec["path"], rec["status"]) == (provider, "/v1/messages", 200)


async def test_anthropic_sdk_stream_translated_from_openai(inproc):
    content = unique("stream these words")
    async with inproc.anthropic().messages.stream(
            model="gpt-4o-mini", max_tokens=64,
            messages=[{"role": "user", "content": content}]) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert final.content[0].text == f"Echo: {content}"
    assert events[0] == "message_start" and events[-1] == "message_stop"


async def test_bring_your_own_key_passes_the_callers_provider_key_upstream(inproc,
                                                                            fake_provider):
    content = unique("my own key")
    client = inproc.openai(api_key="sk-caller-own-openai-key")
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}],
        extra_headers={"Helicone-Auth": f"Bearer {ADMIN_KEY}"})
    assert raw.parse().choices[0].message.content == f"Echo: {content}"
    headers = {k.lower(): v for k, v in received_by_fake(fake_provider, content)["headers"].items()}
    assert headers["authorization"] == "Bearer sk-caller-own-openai-key"


async def test_embeddings_and_model_listing(inproc):
    client = inproc.openai()
    embedded = await client.embeddings.create(model="text-embedding-3-small",
                                              input=["one", "two"])
    assert [e.index for e in embedded.data] == [0, 1] and len(embedded.data[0].embedding) > 0
    models = await client.models.list()
    assert any(model.id == "gpt-4o-mini" for model in models.data)
