"""The Responses API ⇄ chat translation (heliograph.formats.responses), on its own: the
chat request a Responses request becomes, the response object and the typed event stream
a chat answer becomes. End to end (a real server, the openai SDK, Claude and Gemini on
the fake upstream): tests/e2e/test_responses_translated.py."""

from __future__ import annotations

import json

import orjson
import pytest

from heliograph import costs
from heliograph.errors import BadRequest
from heliograph.fake_upstream.faults import WRONG_SHAPE_EVENT
from heliograph.formats.responses import compaction
from heliograph.formats.responses.answer_from_chat import from_chat
from heliograph.formats.responses.items import carried_over, compaction_item, listed
from heliograph.formats.responses.request_to_chat import to_chat
from heliograph.formats.responses.stream_from_chat import ChatToResponsesStream

WEATHER = {"type": "function", "name": "get_weather", "description": "weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
           "strict": True}


def test_a_full_request_becomes_the_chat_request_that_means_the_same():
    chat = to_chat({
        "model": "claude-x", "instructions": "be brief", "stream": True,
        "input": [
            {"role": "developer", "content": "dev note"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA",
                 "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "get_weather",
             "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "rainy"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "done"}]}],
        "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "strict": True,
                            "schema": {"type": "object"}}},
        "reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 50,
        "temperature": 0.5, "top_p": 0.9, "parallel_tool_calls": False, "user": "u1",
        "metadata": {"a": "b"}, "store": True, "truncation": "auto"}, "anthropic")
    assert chat["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "dev note"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA",
                                                "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "c2", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "rainy"}]},
        {"role": "assistant", "content": "done"}]
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "weather", "strict": True,
        "parameters": WEATHER["parameters"]}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "w", "strict": True, "schema": {"type": "object"}}}
    assert chat["reasoning_effort"] == "low"
    assert chat["max_completion_tokens"] == 50
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert (chat["temperature"], chat["top_p"], chat["parallel_tool_calls"], chat["user"]) \
        == (0.5, 0.9, False, "u1")
    assert "metadata" not in chat and "store" not in chat


@pytest.mark.parametrize("body, param", [
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "x", "background": True}, "background"),
    ({"input": "x", "conversation": "conv_1"}, "conversation"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0]"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"input": 5}, "input"),
    ({"input": []}, "input"),
    ({"input": "x", "instructions": 5}, "instructions"),
    ({"input": "x", "stream": "yes"}, "stream"),
    ({"input": [{"type": "compaction", "encrypted_content": "gAAA-openai"}]}, "input[0]"),
])
def test_what_chat_cannot_honour_is_a_400_naming_the_field(body, param):
    with pytest.raises(BadRequest) as info:
        to_chat({"model": "claude-x", **body}, "anthropic")
    assert f"({param})" in info.value.message


def test_an_unknown_previous_response_is_openais_400():
    with pytest.raises(BadRequest) as info:
        to_chat({"model": "m", "input": "x", "previous_response_id": "resp_x"}, "gemini")
    assert info.value.code == "previous_response_not_found"
    assert "resp_x" in info.value.message


def _completion(message: dict, finish: str = "stop") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "claude-x-2025", "choices": [
                {"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 4,
                                                "cache_write_tokens": 2},
                      "completion_tokens_details": {"reasoning_tokens": 3}}}


def test_a_chat_answer_becomes_a_response_object():
    request = {"model": "claude-x", "instructions": "be brief", "tools": [WEATHER],
               "reasoning": {"effort": "high", "summary": "auto"}, "store": False}
    response = from_chat(_completion({
        "role": "assistant", "content": "Checking.", "reasoning_content": "think",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Paris"}'}}]}), request)
    assert response["id"].startswith("resp_") and response["object"] == "response"
    assert response["status"] == "completed" and response["incomplete_details"] is None
    assert response["model"] == "claude-x-2025" and response["created_at"] == 1700000000
    reasoning, message, call = response["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == [
        {"type": "summary_text", "text": "think"}]
    assert message["role"] == "assistant" and message["content"] == [
        {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]
    assert call == {"type": "function_call", "id": call["id"], "call_id": "call_1",
                    "name": "get_weather", "arguments": '{"city":"Paris"}',
                    "status": "completed"}
    assert response["usage"] == {
        "input_tokens": 10, "input_tokens_details": {"cached_tokens": 4,
                                                     "cache_write_tokens": 2},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 15}
    # The log prices it as it would the chat usage: nothing lost in the renaming.
    assert costs.usage_from_openai(response["usage"]) == costs.Usage(
        prompt_tokens=10, completion_tokens=5, cached_tokens=4, cache_write_tokens=2,
        reasoning_tokens=3)
    assert response["instructions"] == "be brief" and response["tools"] == [WEATHER]
    assert response["reasoning"] == {"effort": "high", "summary": "auto"}
    assert response["store"] is False


def test_a_cut_answer_is_incomplete():
    response = from_chat(_completion({"role": "assistant", "content": "a b"}, "length"),
                         {"model": "m", "max_output_tokens": 2})
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def _chunk(delta: dict | None = None, finish: str | None = None, usage=None) -> dict:
    out: dict = {"id": "c", "object": "chat.completion.chunk", "model": "gemini-x",
                 "choices": [] if delta is None else [
                     {"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        out["usage"] = usage
    return out


def test_a_chat_stream_becomes_the_typed_event_sequence():
    stream = ChatToResponsesStream({"model": "gemini-x", "tools": [WEATHER]})
    events = []
    for chunk in [
            _chunk({"role": "assistant", "reasoning_content": "hm"}),
            _chunk({"content": "Hel"}), _chunk({"content": "lo"}),
            _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Rome"}'}}]}),
            _chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                    "function": {"name": "get_weather",
                                                 "arguments": "{}"}}]}),
            _chunk({}, "tool_calls"),
            _chunk(None, usage={"prompt_tokens": 7, "completion_tokens": 2,
                                "total_tokens": 9})]:
        events += stream.feed(chunk)
    events += stream.finish()
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    created, final = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert final["id"] == created["id"] and final["status"] == "completed"
    assert final["usage"]["input_tokens"] == 7 and final["usage"]["output_tokens"] == 2
    kinds = [item["type"] for item in final["output"]]
    assert kinds == ["reasoning", "message", "function_call", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert [json.loads(i["arguments"]) for i in final["output"][2:]] == [
        {"city": "Rome"}, {}]
    assert [i["call_id"] for i in final["output"][2:]] == ["call_a", "call_b"]
    # Each item event names the item it belongs to, and the deltas add up to it.
    text_done = next(e for e in events if e["type"] == "response.output_text.done")
    assert text_done["item_id"] == final["output"][1]["id"] and text_done["text"] == "Hello"
    args_done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["output_index"] for e in args_done] == [2, 3]


def test_a_stream_cut_by_max_tokens_ends_incomplete():
    stream = ChatToResponsesStream({"model": "m"})
    events = stream.feed(_chunk({"content": "a"})) + stream.feed(_chunk({}, "length"))
    events += stream.finish()
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_conversation_items_carry_over_without_ids_and_list_with_stable_ids():
    stored = listed([{"role": "user", "content": "hi"}])
    assert stored[0]["id"].startswith("msg_") and stored[0]["content"] == [
        {"type": "input_text", "text": "hi"}]
    output = [{"type": "message", "id": "msg_out", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "yo"}]}]
    reasoning = [{"type": "reasoning", "id": "rs_1", "summary": []}]
    follow = carried_over(stored, reasoning + output)
    assert all("id" not in item for item in follow)
    assert [item["type"] for item in follow] == ["message", "message"]
    assert to_chat({"model": "m", "input": follow + [{"role": "user", "content": "again"}]},
                   "gemini")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "yo"}, {"role": "user", "content": "again"}]


def test_compaction_summarises_and_its_item_reads_back_as_text():
    body = {"model": "m", "input": [{"role": "user", "content": "my name is Ada"},
                                    {"role": "assistant", "content": "hello Ada"}]}
    chat = compaction.to_chat_request(body, "anthropic")
    assert chat["messages"][-1] == {"role": "user",
                                    "content": compaction.SUMMARY_INSTRUCTIONS}
    answer = compaction.from_chat(_completion({"role": "assistant",
                                               "content": "User is Ada."}), body)
    assert answer["object"] == "response.compaction"
    user, item = answer["output"]
    assert user["role"] == "user" and item["type"] == "compaction"
    assert answer["usage"]["input_tokens"] == 10
    again = to_chat({"model": "m", "input": [item, {"role": "user", "content": "name?"}]},
                    "anthropic")
    assert again["messages"][0] == {"role": "assistant", "content":
                                    "Summary of the conversation so far:\nUser is Ada."}
    assert compaction_item("x")["encrypted_content"] != "x"


def test_a_chat_chunk_of_the_wrong_shape_is_read_as_far_as_it_can_be():
    """A provider's chunk that is JSON of the wrong shape (the fake upstream's wrong-shape
    event: a string delta, content a number, tool calls that are no objects) adds nothing
    and breaks nothing: the stream before and after it translates as usual."""
    stream = ChatToResponsesStream({"model": "m"})
    events = stream.feed(_chunk({"content": "Hel"}))
    events += stream.feed(orjson.loads(WRONG_SHAPE_EVENT))
    events += stream.feed(_chunk({"content": "lo"})) + stream.feed(_chunk({}, "stop"))
    events += stream.finish()
    assert events[-1]["type"] == "response.completed"
    text = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert text == ["Hel", "lo"]
    assert [item["type"] for item in events[-1]["response"]["output"]] == ["message"]


def test_a_chat_answer_of_the_wrong_shape_becomes_an_empty_response():
    """A provider's answer whose message is a string and usage no object: a completed
    response with no output, not an error of the gateway's."""
    answer = from_chat({"id": "x", "object": "chat.completion", "model": "m", "created": "soon",
                        "choices": [{"index": 0, "message": "not an object",
                                     "finish_reason": 5}, "no choice"],
                        "usage": "none"}, {"model": "m"})
    assert answer["status"] == "completed" and answer["output"] == []
    assert answer["model"] == "m" and isinstance(answer["created_at"], int)
