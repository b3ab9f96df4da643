"""The Anthropic front's translation on shapes the e2e tests do not reach: Anthropic
requests with thinking, server tools and images in tool results; OpenAI streams that mix
text and tools, or open with Azure's empty chunk; errors; the Responses stream pieces."""

import asyncio

import orjson
import pytest

from heliograph import costs
from heliograph.errors import BadRequest, ProviderStatusError, UpstreamTimeout
from heliograph.formats.anthropic.request_to_openai import to_openai
from heliograph.formats.responses.events import ResponsesAccumulator, responses_batches
from heliograph.providers.base import NATIVE_KEY
from heliograph.proxy.anthropic_front import ANTHROPIC


def test_request_translation_drops_only_what_has_no_equivalent():
    body = to_openai({"model": "o3-mini", "max_tokens": 50, "stream": True,
                      "tools": [{"name": "f", "input_schema": {"type": "object"}},
                                {"type": "web_search_20250305", "name": "web_search"}],
                      "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
                      "messages": [
                          {"role": "user", "content": "q"},
                          {"role": "assistant", "content": [
                              {"type": "thinking", "thinking": "t", "signature": "s"},
                              {"type": "tool_use", "id": "toolu_1", "name": "f",
                               "input": {"a": 1}}]},
                          {"role": "user", "content": [
                              {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                               "content": [{"type": "text", "text": "bad"},
                                           {"type": "image", "source": {
                                               "type": "base64", "media_type": "image/png",
                                               "data": "AAAA"}}]}]}]})
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert body["tools"] == [{"type": "function", "function": {"name": "f",
                                                               "parameters": {"type": "object"}}}]
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1",
                                   "content": "Error: bad"}
    # The tool result's image moves to a user message right after.
    assert body["messages"][3]["content"][0]["image_url"]["url"] == "data:image/png;base64,AAAA"


@pytest.mark.parametrize("bad", [
    {"model": "m", "messages": [{"role": "user", "content": "x"}]},
    {"model": "m", "max_tokens": 5, "messages": []},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]},
])
def test_bad_anthropic_requests_are_400s(bad):
    with pytest.raises(BadRequest):
        to_openai(bad)


def render_all(chunks, finish=True):
    renderer = ANTHROPIC.stream()
    raw = b"".join(renderer.render(orjson.dumps(c)) for c in chunks)
    completion = {"choices": [{"finish_reason": "tool_calls"}]} if finish else {"choices": []}
    logged = renderer.logged(completion)      # the pipeline logs, then sends the end
    if finish:
        raw += renderer.finish()
    events = [orjson.loads(block.split(b"\ndata: ", 1)[1])
              for block in raw.split(b"\n\n") if block]
    return events, logged


def chunk(delta=None, finish=None, usage=None, id_="c1", model="gpt-4o"):
    out = {"id": id_, "model": model,
           "choices": [] if delta is None else [{"index": 0, "delta": delta,
                                                 "finish_reason": finish}]}
    if usage:
        out["usage"] = usage
    return out


def test_stream_rendering_text_then_tools():
    events, logged = render_all([
        chunk(None, id_="", model=""),                       # Azure's prompt-filter chunk
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}), chunk({"content": "look."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        chunk(None, usage={"prompt_tokens": 100, "completion_tokens": 9,
                           "prompt_tokens_details": {"cached_tokens": 40}})])
    kinds = [e["type"] for e in events]
    assert kinds == ["message_start", "content_block_start", "content_block_delta",
                     "content_block_delta", "content_block_stop", "content_block_start",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert events[0]["message"]["id"] == "msg_c1" and events[0]["message"]["model"] == "gpt-4o"
    assert [e["index"] for e in events if e["type"] == "content_block_start"] == [0, 1, 2]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"input_tokens": 60, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 40, "output_tokens": 9}
    assert logged["content"] == [{"type": "text", "text": "Let me look."},
                                 {"type": "tool_use", "id": "call_a", "name": "f",
                                  "input": {"x": 1}},
                                 {"type": "tool_use", "id": "call_b", "name": "g", "input": {}}]
    assert logged["stop_reason"] == "tool_use" and logged["usage"]["output_tokens"] == 9


def test_a_cut_stream_logs_what_arrived_without_inventing_an_end():
    events, logged = render_all([chunk({"content": "partial"})], finish=False)
    assert "message_stop" not in [e["type"] for e in events]
    assert logged["content"] == [{"type": "text", "text": "partial"}]
    assert logged["stop_reason"] is None


def test_native_events_pass_through_untouched():
    native = {"type": "content_block_delta", "index": 0,
              "delta": {"type": "citations_delta", "citation": {"cited_text": "x"}}}
    renderer = ANTHROPIC.stream()
    start = {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {}}}
    out = renderer.render(orjson.dumps(dict(chunk({"role": "assistant"}), **{NATIVE_KEY: start})))
    out += renderer.render(orjson.dumps({"choices": [], NATIVE_KEY: {
        "type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}}}))
    out += renderer.render(orjson.dumps(dict(chunk({"content": "ignored"}), **{NATIVE_KEY: native})))
    assert b"citations_delta" in out and b"ignored" not in out
    assert renderer.finish() == b""
    assert renderer.logged({})["content"][0]["citations"] == [{"cited_text": "x"}]


def test_error_types():
    body = orjson.loads(ANTHROPIC.error_body(ProviderStatusError(
        529, "Overloaded", b'{"error": {"type": "overloaded_error", "message": "Overloaded"}}')))
    assert body == {"type": "error", "error": {"type": "overloaded_error",
                                               "message": "Overloaded"}}
    assert orjson.loads(ANTHROPIC.error_body(UpstreamTimeout("slow")))["error"]["type"] == \
        "timeout_error"
    assert orjson.loads(ANTHROPIC.error_body(BadRequest("x")))["error"]["type"] == \
        "invalid_request_error"


def test_non_stream_answer_keeps_bad_arguments_visible():
    out, logged = ANTHROPIC.response({"id": "chatcmpl-1", "model": "m", "choices": [{
        "finish_reason": "tool_calls", "message": {"content": None, "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}}, b"")
    assert orjson.loads(out) == logged
    assert logged["content"][0]["input"] == {"_raw_arguments": "{oops"}
    assert logged["id"] == "msg_chatcmpl-1" and logged["usage"]["input_tokens"] == 3


def test_anthropic_usage_is_understood_by_costs():
    u = costs.usage_from_openai({"input_tokens": 10, "cache_read_input_tokens": 5,
                                 "cache_creation_input_tokens": 7, "output_tokens": 3,
                                 "output_tokens_details": {"thinking_tokens": 2}})
    assert u == costs.Usage(prompt_tokens=22, completion_tokens=3, cached_tokens=5,
                            cache_write_tokens=7, reasoning_tokens=2)


def test_responses_stream_gets_an_end_only_when_complete():
    async def collect(*items):
        async def batches():
            for item in items:
                yield [item]
        return [p async for batch in responses_batches(batches()) for p in batch]

    done = asyncio.run(collect(
        b'{"type":"response.output_text.delta","delta":"x"}',
        b'{"type":"response.completed","response":{"status":"completed",'
        b'"usage":{"input_tokens":1}}}'))
    assert done[-1] == b"[DONE]"
    cut = asyncio.run(collect(
        b'{"type":"response.output_text.delta","delta":"say \\"response.completed\\""}'))
    assert b"[DONE]" not in cut
    acc = ResponsesAccumulator()
    for payload in done:
        acc.process(payload)
    assert acc.done and acc.saw_content and acc.usage == {"input_tokens": 1}
