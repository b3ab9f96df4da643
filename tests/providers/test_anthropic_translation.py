"""OpenAI ⇄ Anthropic translation in the adapter, on shapes the fake never produces
(text before tool use, thinking, cumulative usage in message_delta, error events)."""

import orjson
import pytest

from heliograph.errors import BadRequest, UpstreamError
from heliograph.formats.anthropic.answer_to_openai import completion, error_body
from heliograph.formats.anthropic.request_from_openai import JSON_TOOL, to_anthropic
from heliograph.formats.anthropic.stream_to_openai import StreamTranslator


def test_system_anywhere_parts_and_cache_control():
    body, json_tool = to_anthropic({"model": "claude-sonnet-4-5", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "a",
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": "b"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": [
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg=="}}]}]})
    assert json_tool is None
    assert body["system"] == [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                              {"type": "text", "text": "b"}]
    # The empty assistant turn is dropped; the two user turns merge.
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERg=="}}]}]


def test_json_object_mode_and_tool_choice():
    body, json_tool = to_anthropic({"model": "claude-sonnet-4-5",
                                    "messages": [{"role": "user", "content": "x"}],
                                    "response_format": {"type": "json_object"},
                                    "tool_choice": "none"})
    assert json_tool == JSON_TOOL
    assert body["tools"] == [{"name": JSON_TOOL, "description": body["tools"][0]["description"],
                              "input_schema": {"type": "object"}}]
    # With no tools of the caller's own, the JSON tool is forced.
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


@pytest.mark.parametrize("message", [
    {"role": "function", "content": "x"},
    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
])
def test_untranslatable_input_is_a_400(message):
    with pytest.raises(BadRequest):
        to_anthropic({"model": "claude-sonnet-4-5", "messages": [message]})


def run(translator, sequence):
    out = []
    for event in sequence:
        out += translator.feed(event)
    return out


def test_stream_text_then_tool_use_then_usage():
    translator = StreamTranslator(None, include_usage=True, provider="anthropic")
    chunks = run(translator, [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {
            "input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking",
                                                                      "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta",
                                                              "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta",
                                                              "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta",
                                                              "text": "Let me check."}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                              "partial_json": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                              "partial_json": '{"a": 1}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 30, "input_tokens": 10, "cache_creation_input_tokens": 7}},
        {"type": "message_stop"}])
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert {"reasoning_content": "hmm"} in deltas and {"content": "Let me check."} in deltas
    tool = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    # The tool is the message's third block but the first tool call: OpenAI index 0.
    assert tool == [{"index": 0, "id": "toolu_1", "type": "function",
                     "function": {"name": "f", "arguments": ""}},
                    {"index": 0, "function": {"arguments": '{"a": 1}'}}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    usage = chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (10 + 5 + 7, 30)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 5, "cache_write_tokens": 7}
    assert translator.done


def test_stream_error_event_and_bad_order():
    translator = StreamTranslator(None, include_usage=False, provider="anthropic")
    with pytest.raises(UpstreamError) as info:
        translator.feed({"type": "content_block_delta", "index": 0, "delta": {}})
    assert info.value.code == "upstream_malformed"
    translator.feed({"type": "message_start", "message": {"id": "m", "model": "x"}})
    with pytest.raises(UpstreamError) as info:
        translator.feed({"type": "error", "error": {"type": "overloaded_error",
                                                    "message": "Overloaded"}})
    assert info.value.status == 529 and "Overloaded" in info.value.message


def test_json_tool_answer_becomes_content():
    result = completion({"id": "msg_1", "model": "m", "stop_reason": "tool_use",
                         "content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL,
                                      "input": {"n": 1}}], "usage": {}}, JSON_TOOL)
    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"n":1}', "refusal": None}
    assert choice["finish_reason"] == "stop"


def test_error_bodies_keep_the_message():
    body = orjson.loads(error_body(429, b'{"type":"error","error":{"type":"rate_limit_error",'
                                        b'"message":"slow down"}}', "anthropic"))
    assert body["error"] == {"message": "slow down", "type": "rate_limit_error", "param": None,
                             "code": "rate_limit_error"}
    text = orjson.loads(error_body(502, b"<html>bad gateway</html>", "anthropic"))
    assert "502" in text["error"]["message"] and "bad gateway" in text["error"]["message"]


@pytest.mark.parametrize("odd", [
    {"content": 5},
    {"content": [{"type": "text", "text": 5}, {"type": "thinking", "thinking": ["x"]}]},
    {"content": [{"type": "tool_use", "id": 3, "name": "f", "input": {}},
                 {"type": "tool_use", "id": "t", "name": ["f"], "input": {}},
                 {"type": "tool_use", "id": "t", "input": {}}]},
    {"stop_reason": ["end_turn"]}, {"id": ["x"], "model": 7},
], ids=["content-number", "texts-no-strings", "tool-use-unusable", "stop-list", "id-model"])
def test_a_message_of_the_wrong_shape_translates_as_far_as_it_can_be_read(odd):
    """A member of the wrong type reads as absent: an empty answer, never an exception;
    a tool_use block without a string name and id is no call (none could be run or
    answered; with no JSON-mode tool, a nameless one is not the JSON answer either).
    (Content or usage that is a string, counts that are no numbers, a number stop reason
    were read as absent already.)"""
    message = {"id": "msg_1", "type": "message", "model": "claude", "content": [],
               "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 2}}
    answer = completion(dict(message, **odd), None)
    choice = answer["choices"][0]
    assert choice["message"]["content"] in (None, "")
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    assert isinstance(answer["id"], str) and isinstance(answer["model"], str)
    assert all(isinstance(v, int) for v in (answer["usage"]["prompt_tokens"],
                                            answer["usage"]["completion_tokens"]))


def test_a_streamed_tool_use_block_of_no_usable_name_is_left_out():
    t = StreamTranslator(None, False, "anthropic")
    t.feed({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}})
    out = t.feed({"type": "content_block_start", "index": 0,
                  "content_block": {"type": "tool_use", "id": 3, "name": ["f"]}})
    out += t.feed({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "input_json_delta", "partial_json": "{}"}})
    out += t.feed({"type": "message_delta", "delta": {"stop_reason": "tool_use"}})
    assert [c["choices"][0]["delta"] for c in out] == [{}]
    assert out[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_error_body_of_the_wrong_shape_is_an_openai_error():
    body = orjson.loads(error_body(429, b'{"error": {"type": ["x"], "message": "slow"}}',
                                   "anthropic"))
    assert body["error"]["type"] == "api_error" and body["error"]["message"] == "slow"
    body = orjson.loads(error_body(429, b'{"error": {"type": "x", "message": 5}}', "anthropic"))
    assert "answered 429" in body["error"]["message"]
