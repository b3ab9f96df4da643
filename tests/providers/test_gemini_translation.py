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
