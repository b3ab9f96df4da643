"""POST /v1/responses on models that only speak chat (Claude, Gemini, an OpenAI-compatible
server without the Responses API), through the real server with the official openai SDK:
answers, streams, tools, structured output, usage and cost in the log, stored responses
(GET / DELETE / input_items / previous_response_id, per organization) and
/v1/responses/compact."""

from __future__ import annotations

import json
import time

import openai
import pytest
from pydantic import BaseModel
from servers import ADMIN_KEY, Gateway

from heliograph import costs

WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
ROUTES = [("anthropic", "claude-3-5-haiku-latest", "/v1/messages"),
          ("gemini", "gemini-2.0-flash", "/v1beta/models/gemini-2.0-flash:generateContent"),
          ("mistral", "mistral-small-latest", "/v1/chat/completions")]


@pytest.fixture(params=ROUTES, ids=[r[0] for r in ROUTES])
def route(request):
    return request.param


def test_a_response_is_translated_logged_and_priced(gateway, openai_client, upstream, route):
    provider, model, upstream_path = route
    upstream.clear()
    raw = openai_client.responses.with_raw_response.create(
        model=model, instructions="be brief", input="hello responses")
    response = raw.parse()
    assert response.output_text == "Echo: hello responses"
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.instructions == "be brief"
    assert upstream.received()[-1]["path"] == upstream_path
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["path"] == "/v1/responses" and rec["status"] == 200
    assert rec["provider"] == provider
    assert rec["prompt_tokens"] == response.usage.input_tokens > 0
    assert rec["completion_tokens"] == response.usage.output_tokens > 0
    assert rec["cost_known"] is True and rec["cost_usd"] > 0
    assert rec["request"]["input"] == "hello responses"
    assert rec["response"]["id"] == response.id
    assert rec["response"]["output"][0]["content"][0]["text"] == "Echo: hello responses"


def test_a_streamed_response_has_the_full_typed_event_sequence(gateway, openai_client,
                                                               route):
    _, model, _ = route
    raw = openai_client.responses.with_raw_response.create(
        model=model, input="stream this answer", stream=True)
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: stream this answer"
    final = events[-1].response
    assert final.output_text == text and final.usage.output_tokens > 0
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 200 and rec["ttft_ms"] is not None
    assert rec["prompt_tokens"] == final.usage.input_tokens
    assert rec["cost_usd"] > 0
    assert rec["response"]["id"] == final.id and rec["response"]["status"] == "completed"


def test_the_sdk_stream_helper_assembles_the_final_response(openai_client, route):
    _, model, _ = route
    with openai_client.responses.stream(model=model, input="helper test") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Echo: helper test"


def test_function_calls_stream_their_arguments_and_round_trip(openai_client, upstream,
                                                              route):
    _, model, _ = route
    plain = openai_client.responses.create(model=model, input="weather in Paris?",
                                           tools=[WEATHER], store=False)
    (call,) = plain.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "fake city"}
    events = list(openai_client.responses.create(model=model, input="weather in Paris?",
                                                 tools=[WEATHER], stream=True, store=False))
    streamed = "".join(e.delta for e in events
                       if e.type == "response.function_call_arguments.delta")
    assert json.loads(streamed) == json.loads(call.arguments)
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == streamed
    final = events[-1].response
    assert final.output[0].type == "function_call" and final.output[0].call_id
    answer = openai_client.responses.create(model=model, tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert answer.output_text == "Echo: sunny"


class Weather(BaseModel):
    city: str
    degrees: int


def test_parse_with_a_json_schema_text_format(openai_client, route):
    _, model, _ = route
    parsed = openai_client.responses.parse(model=model, input="weather as JSON",
                                           text_format=Weather)
    assert isinstance(parsed.output_parsed, Weather)
    assert parsed.output_parsed.city and isinstance(parsed.output_parsed.degrees, int)


def test_reasoning_and_cached_tokens_are_reported_and_priced(gateway, openai_client):
    raw = openai_client.responses.with_raw_response.create(
        model="claude-3-5-haiku-latest", input="x", reasoning={"effort": "low"},
        extra_headers={"x-fake-behavior": "usage-1000-100,cached-400"})
    response = raw.parse()
    assert response.usage.input_tokens == 1000
    assert response.usage.input_tokens_details.cached_tokens == 400
    assert response.reasoning.effort == "low"
    rec = gateway.record(raw.headers["helicone-id"])
    assert (rec["prompt_tokens"], rec["cached_tokens"]) == (1000, 400)
    raw = openai_client.responses.with_raw_response.create(
        model="gemini-2.0-flash", input="x",
        extra_headers={"x-fake-behavior": "usage-1000-100,reasoning-30"})
    assert raw.parse().usage.output_tokens_details.reasoning_tokens == 30
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["reasoning_tokens"] == 30
    expected = costs.cost_of("google", "gemini-2.0-flash", costs.Usage(
        prompt_tokens=1000, completion_tokens=100, reasoning_tokens=30))
    assert rec["cost_usd"] == pytest.approx(expected.usd)


def test_a_cut_answer_is_incomplete(openai_client):
    response = openai_client.responses.create(model="claude-3-5-haiku-latest",
                                              input="one two three four five",
                                              max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


def test_what_chat_cannot_do_is_a_logged_400_naming_it(gateway, openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="claude-3-5-haiku-latest", input="x",
                                       tools=[{"type": "web_search"}])
    assert "tools[0].type" in info.value.message and "anthropic" in info.value.message
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert rec["status"] == 400 and "web_search" in rec["error"]
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="gemini-2.0-flash", input="x",
                                       previous_response_id="resp_unknown")
    assert info.value.code == "previous_response_not_found"


def test_upstream_errors_and_cut_streams(gateway, openai_client):
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.responses.create(model="claude-3-5-haiku-latest", input="x",
                                       extra_headers={"x-fake-behavior": "status-429"})
    assert gateway.record(info.value.response.headers["helicone-id"])["status"] == 429
    raw = openai_client.responses.with_raw_response.create(
        model="gemini-2.0-flash", input="a b c d e f", stream=True,
        extra_headers={"x-fake-behavior": "truncated"})
    events = list(raw.parse())
    assert events[-1].type == "error"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert all(e.type != "response.completed" for e in events)
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["status"] == 502


# -- stored responses --------------------------------------------------------------------
def test_a_stored_response_is_retrieved_listed_chained_and_deleted(gateway, openai_client,
                                                                   upstream):
    first = openai_client.responses.create(model="claude-3-5-haiku-latest",
                                           instructions="be brief", input="my name is Ada")
    again = openai_client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text
    items = openai_client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == "my name is Ada"
    upstream.clear()
    second = openai_client.responses.create(model="gemini-2.0-flash",
                                            previous_response_id=first.id,
                                            input="what is my name?")
    assert second.previous_response_id == first.id
    sent = upstream.received()[-1]["body"]
    texts = [part.get("text") for turn in sent["contents"] for part in turn["parts"]]
    assert texts == ["my name is Ada", "Echo: my name is Ada", "what is my name?"]
    assert "systemInstruction" not in sent  # instructions are not carried over (OpenAI's rule)
    chained = openai_client.responses.input_items.list(second.id, order="asc")
    assert [i.type for i in chained.data] == ["message"] * 3
    page = openai_client.responses.input_items.list(second.id, limit=2)
    assert len(page.data) == 2 and page.has_more
    rest = openai_client.responses.input_items.list(second.id, limit=2,
                                                    after=page.data[-1].id)
    assert [i.id for i in rest.data] == [chained.data[0].id]
    status, deleted = gateway.api(f"/v1/responses/{first.id}", method="DELETE")
    assert status == 200
    assert deleted == {"id": first.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.delete(first.id)


def test_a_streamed_response_can_be_chained_at_once(openai_client, upstream):
    events = list(openai_client.responses.create(model="claude-3-5-haiku-latest",
                                                 input="remember seven", stream=True))
    first_id = events[-1].response.id
    upstream.clear()
    follow = openai_client.responses.create(model="claude-3-5-haiku-latest",
                                            previous_response_id=first_id, input="and?")
    assert follow.output_text == "Echo: and?"
    sent = upstream.received()[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][0]["text"] == "Echo: remember seven"


def test_a_chained_tool_call_round_trip(openai_client):
    first = openai_client.responses.create(model="gemini-2.0-flash", tools=[WEATHER],
                                           input="weather in Paris?")
    (call,) = first.output
    answer = openai_client.responses.create(
        model="gemini-2.0-flash", tools=[WEATHER], previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id,
                "output": "sunny"}])
    assert answer.output_text == "Echo: sunny"


def test_a_stored_translated_response_chains_onto_openai(openai_client, upstream):
    first = openai_client.responses.create(model="claude-3-5-haiku-latest", input="hi")
    upstream.clear()
    follow = openai_client.responses.create(model="gpt-4o-mini", previous_response_id=first.id,
                                            input="again")
    assert follow.output_text == "Echo: again"
    sent = upstream.received()[-1]
    assert sent["path"] == "/v1/responses" and "previous_response_id" not in sent["body"]
    assert [i.get("role") for i in sent["body"]["input"]] == ["user", "assistant", "user"]


def test_store_false_keeps_nothing_and_openai_keeps_its_own(gateway, openai_client,
                                                             upstream):
    unstored = openai_client.responses.create(model="claude-3-5-haiku-latest", input="x",
                                              store=False)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(unstored.id)
    # OpenAI's store has its own answers: an id the gateway does not hold is asked there,
    # and the call is logged.
    native = openai_client.responses.create(model="gpt-4o-mini", input="kept by openai")
    upstream.clear()
    raw = openai_client.responses.with_raw_response.retrieve(native.id)
    assert raw.parse().output_text == "Echo: kept by openai"
    assert upstream.received()[-1]["path"] == f"/v1/responses/{native.id}"
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["path"] == f"/v1/responses/{native.id}" and rec["provider"] == "openai"
    assert rec["status"] == 200 and rec["cost_usd"] == 0 and rec["cost_known"] is True
    assert not rec["prompt_tokens"]  # the tokens were counted when it was created
    status, deleted = gateway.api(f"/v1/responses/{native.id}", method="DELETE")
    assert status == 200 and deleted["deleted"] is True
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.responses.retrieve(native.id)
    assert gateway.record(info.value.response.headers["helicone-id"])["status"] == 404


def test_stored_responses_are_scoped_per_organization(gateway, openai_client):
    created = gateway.cli("keys", "create", "--name", "other-org", "--org", "other-org")
    other_key = created.stdout.strip().splitlines()[-1]
    other = openai.OpenAI(base_url=gateway.url + "/v1", api_key=other_key, max_retries=0)
    mine = openai_client.responses.create(model="claude-3-5-haiku-latest", input="secret")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError):  # not theirs to chain from
        other.responses.create(model="claude-3-5-haiku-latest", input="x",
                               previous_response_id=mine.id)
    assert openai_client.responses.retrieve(mine.id).id == mine.id
    unauthenticated = openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong",
                                    max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        unauthenticated.responses.retrieve(mine.id)


def test_bad_queries_on_stored_responses(gateway):
    status, body = gateway.api("/v1/responses/resp_x/input_items?order=sideways", ADMIN_KEY)
    assert status == 400 and "order" in body["error"]["message"]
    status, body = gateway.api("/v1/responses/resp_x?colour=red", ADMIN_KEY)
    assert status == 400 and "colour" in body["error"]["message"]
    status, body = gateway.api("/v1/responses/resp_x/input_items?limit=0", ADMIN_KEY)
    assert status == 400 and "limit" in body["error"]["message"]
    status, body = gateway.api("/v1/responses/resp_nope", ADMIN_KEY)
    assert status == 404 and "not found" in body["error"]["message"]


# -- compaction ---------------------------------------------------------------------------
def test_compact_summarises_and_the_summary_carries_the_conversation(gateway, openai_client,
                                                                     upstream):
    raw = openai_client.responses.with_raw_response.compact(
        model="claude-3-5-haiku-latest",
        input=[{"role": "user", "content": "my name is Ada"},
               {"role": "assistant", "content": "hello Ada"}])
    compacted = raw.parse()
    assert compacted.object == "response.compaction"
    assert [i.type for i in compacted.output] == ["message", "compaction"]
    assert compacted.usage.input_tokens > 0
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["path"] == "/v1/responses/compact" and rec["status"] == 200
    assert rec["provider"] == "anthropic" and rec["cost_usd"] > 0
    upstream.clear()
    follow = openai_client.responses.create(
        model="claude-3-5-haiku-latest",
        input=[item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]
        + [{"role": "user", "content": "what is my name?"}])
    assert follow.output_text == "Echo: what is my name?"
    sent = upstream.received()[-1]["body"]["messages"]
    summary = sent[1]["content"][0]["text"]
    assert summary.startswith("Summary of the conversation so far:")


def test_compact_goes_to_openai_natively(gateway, openai_client, upstream):
    upstream.clear()
    raw = openai_client.responses.with_raw_response.compact(
        model="gpt-4o-mini", input=[{"role": "user", "content": "hello"}])
    compacted = raw.parse()
    assert upstream.received()[-1]["path"] == "/v1/responses/compact"
    assert compacted.output[-1].encrypted_content.startswith("fake-encrypted-")
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["provider"] == "openai" and rec["prompt_tokens"] > 0 and rec["cost_usd"] > 0
    # A provider's encrypted compaction cannot be read by another provider: a clear 400.
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="claude-3-5-haiku-latest", input=[
            item.model_dump(exclude_none=True, warnings=False) for item in compacted.output])
    assert "compaction item was not made by this gateway" in info.value.message


def test_a_cached_stream_replays_as_the_same_typed_events(gateway, openai_client):
    headers = {"Helicone-Cache-Enabled": "true"}
    first = openai_client.responses.with_raw_response.create(
        model="gemini-2.0-flash", input="cache me please", stream=True, extra_headers=headers)
    live = list(first.parse())
    # Answers that went to the provider: a miss while the first entry is still being
    # written (after its answer was sent) stores its own answer too, so a hit may replay
    # either.
    answered = {live[-1].response.id}
    deadline = time.monotonic() + 10
    while True:
        again = openai_client.responses.with_raw_response.create(
            model="gemini-2.0-flash", input="cache me please", stream=True,
            extra_headers=headers)
        replayed = list(again.parse())
        if again.headers["helicone-cache"] == "HIT" or time.monotonic() > deadline:
            break
        answered.add(replayed[-1].response.id)
        time.sleep(0.1)
    assert again.headers["helicone-cache"] == "HIT"
    assert [e.type for e in replayed] == [e.type for e in live]
    assert replayed[-1].response.output_text == "Echo: cache me please"
    assert replayed[-1].response.id in answered  # a stored answer, not a new one
    rec = gateway.record(again.headers["helicone-id"])
    assert rec["cache"] == "hit" and rec["response"]["id"] == replayed[-1].response.id


def test_item_references_to_stored_answers_are_resolved(openai_client, upstream):
    """The Vercel AI SDK's default (store on): earlier answers come back as references."""
    first = openai_client.responses.create(model="claude-3-5-haiku-latest", input="hi there")
    upstream.clear()
    follow = openai_client.responses.create(model="gemini-2.0-flash", input=[
        {"role": "user", "content": "hi there"},
        {"type": "item_reference", "id": first.output[0].id},
        {"role": "user", "content": "and now?"}])
    assert follow.output_text == "Echo: and now?"
    sent = upstream.received()[-1]["body"]["contents"]
    assert [part["text"] for turn in sent for part in turn["parts"]] == [
        "hi there", "Echo: hi there", "and now?"]
    with pytest.raises(openai.BadRequestError) as info:  # one the gateway never kept
        openai_client.responses.create(model="gemini-2.0-flash", input=[
            {"type": "item_reference", "id": "msg_unknown"}])
    assert "item_reference" in info.value.message
    openai_client.responses.delete(first.id)
    with pytest.raises(openai.BadRequestError):  # deleted with its response
        openai_client.responses.create(model="gemini-2.0-flash", input=[
            {"role": "user", "content": "x"}, {"type": "item_reference",
                                               "id": first.output[0].id}])


def test_parallel_tool_calls_stream_as_separate_items(openai_client, route):
    _, model, _ = route
    clock = {"type": "function", "name": "get_time",
             "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}
    events = list(openai_client.responses.create(
        model=model, input="call get_weather and get_time", tools=[WEATHER, clock],
        stream=True, store=False))
    final = events[-1].response
    assert [(i.type, i.name) for i in final.output] == [("function_call", "get_weather"),
                                                        ("function_call", "get_time")]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.output_index for e in added] == [0, 1]
    for index, item in enumerate(final.output):
        deltas = "".join(e.delta for e in events if e.type ==
                         "response.function_call_arguments.delta" and e.output_index == index)
        assert json.loads(deltas) == json.loads(item.arguments)


def test_a_fallback_chain_from_openai_to_claude(gateway, openai_client):
    raw = openai_client.responses.with_raw_response.create(
        model="gpt-4o-mini-fake-status-503,claude-3-5-haiku-latest", input="fall over",
        extra_headers={"Helicone-Fallback-OnCodes": "503"})
    response = raw.parse()
    assert response.output_text == "Echo: fall over"
    assert raw.headers["helicone-fallback-index"] == "1"
    rec = gateway.record(raw.headers["helicone-id"])
    assert [a["provider"] for a in rec["attempts"]] == ["openai", "anthropic"]
    assert rec["provider"] == "anthropic" and rec["cost_usd"] > 0
    # Answered by a provider without a store: the gateway kept it.
    assert openai_client.responses.retrieve(response.id).output_text == "Echo: fall over"


def test_compact_a_stored_conversation_by_its_id(openai_client, upstream):
    first = openai_client.responses.create(model="gemini-2.0-flash", input="my name is Ada")
    upstream.clear()
    compacted = openai_client.responses.compact(model="gemini-2.0-flash",
                                                previous_response_id=first.id)
    users = [item for item in compacted.output if item.type == "message"]
    assert [u.content[0].text for u in users] == ["my name is Ada"]
    sent = json.dumps(upstream.received()[-1]["body"])
    assert "Echo: my name is Ada" in sent  # the stored answer was part of what got summarised


def test_without_an_openai_key_an_unknown_id_is_the_gateways_404(upstream, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}",
                 env={"OPENAI_API_KEY": ""})
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        upstream.clear()
        with pytest.raises(openai.NotFoundError) as info:
            client.responses.retrieve("resp_elsewhere")
        assert info.value.code == "response_not_found"
        assert upstream.received() == []  # nobody to ask
        kept = client.responses.create(model="claude-3-5-haiku-latest", input="x")
        assert client.responses.retrieve(kept.id).id == kept.id
    finally:
        gw.stop()


def test_reasoning_becomes_a_summary_item_and_streams_as_summary_events(gateway,
                                                                        openai_client):
    """reasoning.effort reaches Claude as extended thinking; its thinking comes back as
    the reasoning item's summary, streamed as reasoning_summary_text events."""
    response = openai_client.responses.create(
        model="claude-3-5-haiku-latest", input="think first",
        reasoning={"effort": "low", "summary": "auto"}, store=False)
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == "Thinking about: think first"
    assert message.content[0].text == "Echo: think first"
    events = list(openai_client.responses.create(
        model="claude-3-5-haiku-latest", input="think first",
        reasoning={"effort": "low", "summary": "auto"}, stream=True, store=False))
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_text.done") < \
        kinds.index("response.output_text.delta")
    summary = "".join(e.delta for e in events
                      if e.type == "response.reasoning_summary_text.delta")
    assert summary == "Thinking about: think first"
    assert events[-1].response.output[0].summary[0].text == summary
