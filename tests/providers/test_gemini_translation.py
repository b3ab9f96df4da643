"""OpenAI ⇄ Gemini translation in the adapter: thought signatures in tool call ids,
several candidates in one stream, safety stops, RetryInfo, error arrays."""

import orjson
import pytest

from heliograph.errors import BadRequest, UpstreamError
from heliograph.formats.gemini.answer_to_openai import (
    completion,
    error_body,
    openai_usage,
    retry_after,
)
from heliograph.formats.gemini.request_from_openai import signature_of, to_gemini, tool_call_id
from heliograph.formats.gemini.stream_to_openai import StreamTranslator


def test_signature_travels_in_the_tool_call_id():
    signature = "ab+/cd=="
    call_id = tool_call_id(signature)
    assert call_id.startswith("call_") and "+" not in call_id and "/" not in call_id
    assert signature_of(call_id) == signature
    assert signature_of(tool_call_id(None)) is None
    assert signature_of("call_from_elsewhere") is None


def test_tool_results_need_their_call_and_merge_into_one_turn():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = to_gemini({"model": "gemini-2.0-flash", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [call, dict(call, id="call_2")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "plain"},
        {"role": "tool", "tool_call_id": "call_2", "content": '["not", "an object"]'}]})
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "f", "response": {"result": "plain"}}},
        {"functionResponse": {"name": "f", "response": {"result": '["not", "an object"]'}}}]}
    with pytest.raises(BadRequest):
        to_gemini({"model": "g", "messages": [{"role": "tool", "tool_call_id": "?",
                                               "content": "x"}]})


def test_usage_counts_thinking_as_output():
    usage = openai_usage({"promptTokenCount": 10, "toolUsePromptTokenCount": 2,
                          "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
                          "cachedContentTokenCount": 4})
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (12, 12)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7


def test_completion_with_thoughts_and_a_safety_stop():
    result = completion({"responseId": "r", "modelVersion": "gemini-2.5-flash", "candidates": [
        {"content": {"parts": [{"text": "thinking", "thought": True}, {"text": "hi"}]},
         "finishReason": "STOP"},
        {"finishReason": "SAFETY", "index": 1}]}, "gemini-2.5-flash")
    first, second = result["choices"]
    assert first["message"] == {"role": "assistant", "content": "hi", "refusal": None,
                                "reasoning_content": "thinking"}
    assert second["finish_reason"] == "content_filter" and second["message"]["content"] is None


def test_stream_with_two_candidates():
    translator = StreamTranslator("gemini-2.0-flash", include_usage=True, provider="gemini")
    out = translator.feed({"candidates": [
        {"content": {"parts": [{"text": "a"}]}, "index": 0},
        {"content": {"parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]},
         "index": 1, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3}})
    out += translator.feed({"candidates": [{"content": {"parts": [{"text": "b"}]}, "index": 0,
                                            "finishReason": "MAX_TOKENS"}],
                            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4}})
    out += translator.end()
    by_index = {}
    for chunk in out:
        for choice in chunk["choices"]:
            by_index.setdefault(choice["index"], []).append(choice)
    assert "".join(c["delta"].get("content") or "" for c in by_index[0]) == "ab"
    assert by_index[0][-1]["finish_reason"] == "length"
    call = by_index[1][0]["delta"]["tool_calls"][0]
    assert call["function"] == {"name": "f", "arguments": '{"x":1}'} and call["index"] == 0
    assert by_index[1][-1]["finish_reason"] == "tool_calls"
    assert out[-1]["usage"]["completion_tokens"] == 4


def test_a_stream_without_a_finish_reason_is_cut():
    translator = StreamTranslator("g", include_usage=False, provider="gemini")
    translator.feed({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})
    assert translator.end() is None
    with pytest.raises(UpstreamError):
        translator.feed({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}})


def test_errors_and_retry_info():
    body = b'[{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",' \
           b' "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",' \
           b' "retryDelay": "2.5s"}]}}]'
    assert orjson.loads(error_body(429, body, "gemini"))["error"] == {
        "message": "quota", "type": "rate_limit_error", "param": None,
        "code": "RESOURCE_EXHAUSTED"}
    assert retry_after(body) == "2.5"
    assert retry_after(b"not json") is None


@pytest.mark.parametrize("odd", [
    {"candidates": {"index": 0}}, {"candidates": ["no candidate"]},
    {"candidates": [{"content": "not an object"}]},
    {"candidates": [{"content": {"parts": [5, {"text": 5},
                                           {"functionCall": {"name": 3, "args": {}}}]}}]},
    {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f"},
                                            "thoughtSignature": 5}]}}]},
    {"candidates": [{"finishReason": ["STOP"], "index": [0]}]},
    {"responseId": ["x"], "modelVersion": 7, "usageMetadata": "none"},
], ids=["candidates-object", "candidate-string", "content-string", "parts-no-use",
        "signature-number", "finish-and-index-lists", "id-model-usage"])
def test_a_response_of_the_wrong_shape_translates_as_far_as_it_can_be_read(odd):
    """A member of the wrong type reads as absent (a function call's signature too, so
    the call stays): never an exception, and every value of the OpenAI answer is of
    its type."""
    answer = completion(dict({"responseId": "r", "modelVersion": "gemini"}, **odd), "m")
    assert isinstance(answer["id"], str) and isinstance(answer["model"], str)
    for choice in answer["choices"]:
        assert isinstance(choice["index"], int)
        assert choice["finish_reason"] == ("tool_calls" if "tool_calls" in choice["message"]
                                           else "stop")
        assert choice["message"]["content"] in (None, "")
        for call in choice["message"].get("tool_calls", ()):
            assert call["function"]["name"] == "f" and "~" not in call["id"]


def test_a_streamed_response_of_the_wrong_shape_adds_nothing():
    t = StreamTranslator("m", True, "gemini")
    out = t.feed({"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "index": 0}]})
    out += t.feed({"candidates": ["x", {"index": [0], "finishReason": ["STOP"],
                                        "content": {"parts": "no list"}}],
                   "usageMetadata": "none", "promptFeedback": "none"})
    out += t.feed({"candidates": [{"content": {"parts": [{"text": "!"}]}, "index": 0,
                                   "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1}})
    closing = t.end()
    assert closing is not None
    deltas = [c["choices"][0]["delta"] for c in out]
    assert [d.get("content") for d in deltas] == ["", "Hi", "!", None]
    assert closing[0]["usage"]["prompt_tokens"] == 2


def test_an_error_body_of_the_wrong_shape_is_an_openai_error():
    raw = b'{"error": {"message": "slow", "status": ["RESOURCE_EXHAUSTED"], "details": 5}}'
    assert retry_after(raw) is None
    body = orjson.loads(error_body(429, raw, "gemini"))["error"]
    assert body["message"] == "slow" and body["code"] is None
    assert body["type"] == "invalid_request_error"
