"""Helicone's manual-logging body read into a record's parts: streamed answers in each
provider's chunk format, timing, spans, and the 400s for what is not that body."""

from __future__ import annotations

import json

import pytest

from heliograph.errors import BadRequest
from heliograph.formats.helicone.log import parse_log

START = {"seconds": 1_750_000_000, "milliseconds": 250}
END = {"seconds": 1_750_000_002, "milliseconds": 0}


def body(request, response=None, text=None, status=200, timing=True):
    out = {"providerRequest": {"url": "custom-model-nopath", "json": request, "meta": {}},
           "providerResponse": {"headers": {}, "status": status,
                                **({"json": response} if response is not None else {}),
                                **({"textBody": text} if text is not None else {})}}
    if timing:
        out["timing"] = {"startTime": START, "endTime": END, "timeToFirstToken": 120}
    return out


def sse(events):
    return "".join(f"event: {e.get('type', 'x')}\ndata: {json.dumps(e)}\n\n" for e in events)


def test_openai_json_lines_stream_takes_the_last_usage():
    chunks = [{"model": "gpt-4o-mini-2024-07-18", "choices": [{"delta": {"content": "hi"}}],
               "usage": None},
              {"model": "gpt-4o-mini-2024-07-18", "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}]
    call = parse_log(body({"model": "gpt-4o-mini"},
                          text="\n".join(json.dumps(c) for c in chunks)))
    assert call.model == "gpt-4o-mini" and call.model_used == "gpt-4o-mini-2024-07-18"
    assert (call.usage.prompt_tokens, call.usage.completion_tokens) == (9, 4)
    assert call.start_ts == 1_750_000_000.25 and call.latency_ms == 1750
    assert call.ttft_ms == 120 and call.status == 200 and call.error is None


def test_anthropic_sse_stream_merges_start_and_delta_usage():
    events = [{"type": "message_start", "message": {
                  "model": "claude-3-5-haiku-20241022",
                  "usage": {"input_tokens": 30, "cache_read_input_tokens": 10,
                            "cache_creation_input_tokens": 0, "output_tokens": 1}}},
              {"type": "content_block_delta", "delta": {"text": "hi"}},
              {"type": "message_delta", "usage": {"output_tokens": 17}},
              {"type": "message_stop"}]
    call = parse_log(body({"model": "claude-3-5-haiku-latest"}, text=sse(events)))
    assert call.model_used == "claude-3-5-haiku-20241022"
    assert call.usage.prompt_tokens == 40 and call.usage.cached_tokens == 10
    assert call.usage.completion_tokens == 17


def test_gemini_stream_counts_the_last_usage_metadata_and_the_url_names_the_model():
    chunks = [{"candidates": [], "usageMetadata": {"promptTokenCount": 5}},
              {"candidates": [], "modelVersion": "gemini-2.0-flash-001",
               "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 8,
                                 "thoughtsTokenCount": 2}}]
    request = body({"contents": []}, text="".join(f"data: {json.dumps(c)}\r\n\r\n"
                                                  for c in chunks))
    request["providerRequest"]["url"] = ("https://generativelanguage.googleapis.com/v1beta/"
                                         "models/gemini-2.0-flash:streamGenerateContent")
    call = parse_log(request)
    assert call.model == "gemini-2.0-flash" and call.model_used == "gemini-2.0-flash-001"
    assert call.usage.prompt_tokens == 5 and call.usage.completion_tokens == 10
    assert call.usage.reasoning_tokens == 2


def test_a_text_body_holding_one_json_answer_and_a_call_without_usage():
    answer = {"model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    assert parse_log(body({"model": "m"}, text=json.dumps(answer))).usage.completion_tokens == 2
    call = parse_log(body({"model": "m"}, response={"output": "no usage"}, timing=False),
                     now=1_800_000_000.0)
    assert call.usage is None and call.start_ts == 1_800_000_000.0 and call.latency_ms == 0


@pytest.mark.parametrize("request_json, name", [
    ({"_type": "tool", "toolName": "search_web", "input": {}}, "tool:search_web"),
    ({"_type": "vector_db", "operation": "search", "text": "q"}, "vector_db:search"),
    ({"_type": "data", "name": "user_query"}, "data:user_query"),
    ({"_type": "tool", "input": {}}, "tool"),
])
def test_non_llm_spans_are_named_and_unpriced(request_json, name):
    call = parse_log(body(request_json, response={"_type": "tool", "result": 1}))
    assert call.span == request_json["_type"] and call.model == name and call.usage is None


def test_errors_keep_the_message_before_the_body_and_cancelled_is_499():
    call = parse_log(body({"model": "m"}, text="TypeError: boom\n  at x\n\nsome body",
                          status=500))
    assert call.status == 500 and call.error == "TypeError: boom\n  at x"
    assert parse_log(body({"model": "m"}, text="", status=-3)).status == 499
    assert parse_log(body({"model": "m"}, status=503)).error == \
        "the call failed with status 503"


@pytest.mark.parametrize("bad, says", [
    ("x", "JSON object"),
    ({"providerRequest": {"json": {}}, "providerResponse": "x"}, "providerResponse"),
    ({"providerRequest": {"json": {}}, "providerResponse": {"textBody": 3}}, "textBody"),
    ({"providerRequest": {"json": {}}, "providerResponse": {"json": []}}, "json"),
    ({"providerRequest": {"json": {}}, "providerResponse": {"status": True}}, "status"),
    ({"providerRequest": {"json": {}}, "providerResponse": {},
      "timing": {"startTime": {"seconds": "now"}, "endTime": END}}, "numbers"),
    ({"providerRequest": {"json": {}}, "providerResponse": {},
      "timing": {"startTime": START, "endTime": END, "timeToFirstToken": -1}}, "milliseconds"),
    ({"providerRequest": {"json": {}}, "providerResponse": {}, "timing": []}, "timing"),
])
def test_not_the_body_is_a_400_saying_what(bad, says):
    with pytest.raises(BadRequest) as refused:
        parse_log(bad)
    assert says in refused.value.message
