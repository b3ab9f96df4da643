"""The stream relay's pure parts: SSE events in batches per read, and the accumulator that
reads a chunk only when it must and assembles the logged answer once, at the end."""

from __future__ import annotations

import asyncio

import orjson

from heliograph.providers import sse
from heliograph.proxy.streaming import StreamAccumulator


def _batches(*reads: bytes) -> list[list[bytes]]:
    async def chunks():
        for read in reads:
            yield read

    async def collect():
        return [batch async for batch in sse.EventBatches(chunks())]

    return asyncio.run(collect())


def test_each_read_gives_the_events_it_completed():
    assert _batches(b'data: {"a":1}\n\ndata: {"b"', b':2}\n\n', b"data: [DO", b"NE]\n\n") == [
        [b'{"a":1}'], [b'{"b":2}'], [b"[DONE]"]]


def test_a_read_that_completes_no_event_yields_nothing():
    assert _batches(b"data: {", b'"a"', b":1}\n", b"\n") == [[b'{"a":1}']]


def test_crlf_comments_fields_and_multiline_data():
    reads = (b": keep-alive\r\n\r\nevent: delta\r\ndata: line one\r\ndata: line two\r",
             b"\n\r\nid: 7\r\n\r\ndata:tight\n\ndata: last without blank line")
    assert _batches(*reads) == [[b"line one\nline two", b"tight"],
                                [b"last without blank line"]]


def _event_by_event(stream: bytes) -> list[bytes]:
    """What the stream's events carry, read event by event (sse.payloads, no fast path)."""
    events = stream.replace(b"\r\n", b"\n").split(b"\n\n")
    return sse.payloads(events[:-1]) + ([sse.payloads([events[-1]])[0]]
                                        if events[-1].strip() else [])


def test_data_line_reads_cut_anywhere_give_what_reading_event_by_event_does():
    """Reads of plain `data: ` events are cut with one split per read (_data_lines): cut
    at every byte (an event, a JSON string, a multi-byte UTF-8 character, the blank line
    between events across reads), and in three reads, the payloads are the same; a read
    with anything else in it (a comment, a field, a second data line, CRLF) falls back."""
    plain = ('data: {"a":"caf\u00e9 \u2603"}\n\ndata: {"b":"x y"}\n\ndata: \n\n'
             'data: [DONE]\n\n').encode()
    others = [plain.replace(b"data: {\"b", b": keep-alive\n\ndata: {\"b"),
              plain.replace(b'data: {"b":"x y"}', b'event: e\ndata: {"b":\ndata: "x y"}'),
              plain.replace(b"\n", b"\r\n"), plain + b"data: unfinished",
              plain.replace(b"\n\ndata: [DONE]", b"\n\n\ndata: [DONE]"),
              plain[:-1], b"data: one\n\n", b"data:tight\n\ndata: x\n\n"]
    for stream in [plain, *others]:
        expected = _event_by_event(stream)
        assert [p for batch in _batches(stream) for p in batch] == expected, stream
        for cut in range(1, len(stream)):
            got = _batches(stream[:cut], stream[cut:])
            assert [p for batch in got for p in batch] == expected, (stream, cut)
            third = cut + (len(stream) - cut) // 2
            got = _batches(stream[:cut], stream[cut:third], stream[third:])
            assert [p for batch in got for p in batch] == expected, (stream, cut, third)
    assert _event_by_event(plain)[0] == '{"a":"caf\u00e9 \u2603"}'.encode()


def test_translated_batches_keep_what_came_before_a_bad_event():
    async def batches():
        yield [b"1", b"2", b"bad", b"3"]

    def translate(data: bytes) -> list[bytes]:
        if data == b"bad":
            raise ValueError("malformed")
        return [data * 2]

    async def collect():
        out = []
        try:
            async for batch in sse.translated(batches(), translate):
                out.append(batch)
        except ValueError:
            out.append("raised")
        return out

    assert asyncio.run(collect()) == [[b"11", b"22"], "raised"]


def chunk(delta: dict | None = None, *, usage=None, choices=True, finish=None, cid="c1",
          index=0) -> bytes:
    """An OpenAI chunk as OpenAI writes it (usage last when asked for)."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": 5, "model": "m"}
    body["choices"] = [{"index": index, "delta": delta or {}, "logprobs": None,
                        "finish_reason": finish}] if choices else []
    body["usage"] = usage
    return orjson.dumps(body)


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_usage_we_asked_for_is_taken_out_byte_exactly():
    acc = StreamAccumulator(strip_usage=True)
    stream = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}),
              chunk({"content": " there"}), chunk(finish="stop"),
              chunk(choices=False, usage=USAGE), b"[DONE]"]
    out = [acc.process(p) for p in stream]
    assert out[-2] is None and out[-1] == b"[DONE]" and acc.done
    for sent, original in zip(out[:-2], stream[:-2], strict=True):
        expected = orjson.loads(original)
        del expected["usage"]
        assert orjson.loads(sent) == expected and b"usage" not in sent
        # Parsed (the first) or not, the chunk is relayed as it came, less the usage.
        assert sent == original.replace(b',"usage":null}', b"}")
    assert acc.usage == USAGE
    logged = acc.completion()
    assert logged["choices"] == [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Hi there"}}]
    assert logged["usage"] == USAGE and logged["id"] == "c1" and logged["model"] == "m"


def test_usage_elsewhere_or_spaced_is_still_taken_out():
    acc = StreamAccumulator(strip_usage=True)
    acc.process(chunk({"content": "x"}))
    first_key = b'{"usage": null, "id": "c1", "choices": [{"index": 0, "delta": {"content": "y"}}]}'
    sent = acc.process(first_key)
    assert sent is not None and "usage" not in orjson.loads(sent)
    assert orjson.loads(sent)["choices"][0]["delta"] == {"content": "y"}


def test_the_callers_own_stream_is_relayed_as_the_same_bytes():
    acc = StreamAccumulator(strip_usage=False)
    stream = [chunk({"role": "assistant"}), chunk({"content": "a"}), chunk({"content": "b"}),
              chunk(choices=False, usage=USAGE)]
    assert all(acc.process(p) is p for p in stream)
    assert acc.usage == USAGE


def test_first_content_is_content_or_a_tool_call_not_a_role():
    acc = StreamAccumulator(strip_usage=False)
    acc.process(chunk({"role": "assistant", "content": ""}))
    assert not acc.saw_content
    acc.process(chunk({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]}))
    assert acc.saw_content


def test_tool_calls_choices_and_azures_empty_first_id_are_assembled():
    acc = StreamAccumulator(strip_usage=False)
    stream = [
        chunk(choices=False, cid=""),  # Azure's prompt-filter chunk
        chunk({"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function",
             "function": {"name": "get", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "put"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}),
        chunk({"content": "second"}, index=1),
        b"not json: relayed, not logged",
        chunk(finish="tool_calls"), chunk(finish="stop", index=1)]
    for payload in stream:
        acc.process(payload)
    logged = acc.completion()
    assert logged["id"] == "c1"
    first, second = logged["choices"]
    assert first["finish_reason"] == "tool_calls" and first["message"]["content"] is None
    assert first["message"]["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "get", "arguments": '{"q":"x"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "put", "arguments": ""}}]
    assert second == {"index": 1, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": "second"}}
    assert acc.completion() == logged  # assembling twice gives the same answer


# --- a read's events at once: the same as one by one ---------------------------------------------

def _streams() -> list[list[bytes]]:
    plain = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}),
             chunk({"content": " there"}), chunk(finish="stop"),
             chunk(choices=False, usage=USAGE), b"[DONE]", chunk({"content": "after"})]
    tools = [chunk(choices=False, cid=""),
             chunk({"role": "assistant", "tool_calls": [
                 {"index": 0, "id": "call_a", "function": {"name": "get", "arguments": ""}}]}),
             chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":1}'}}]}),
             b"not json", b'{"usage": null, "choices": [{"index": 0, "delta": {"content": "y"}}]}',
             chunk({"content": "z"}, usage=USAGE), chunk(finish="tool_calls"), b"[DONE]"]
    return [plain, tools, plain[:3], [b"[DONE]"], []]


def _one_by_one(acc: StreamAccumulator, stream: list[bytes]) -> list[bytes]:
    out = []
    for payload in stream:
        kept = acc.process(payload)
        if acc.done:
            break
        if kept is not None:
            out.append(kept)
    return out


def test_a_batch_is_processed_as_its_payloads_one_by_one():
    for stream in _streams():
        for strip in (True, False):
            for cut in range(len(stream) + 1):  # the stream read in two batches
                one, batched = StreamAccumulator(strip), StreamAccumulator(strip)
                expected = _one_by_one(one, stream)
                got = batched.process_batch(stream[:cut])
                if not batched.done:
                    got += batched.process_batch(stream[cut:])
                assert got == expected, (stream, strip, cut)
                assert (batched.done, batched.usage, batched.saw_content, batched.id) == \
                    (one.done, one.usage, one.saw_content, one.id)
                assert batched.completion() == one.completion()


def test_the_text_fast_path_assembles_what_merging_every_chunk_does():
    stream = [chunk({"role": "assistant", "content": ""}), chunk({"content": "a"}),
              chunk({"content": ""}), chunk({"content": "b"}, finish="length"),
              chunk({"content": "c"}, index=1), chunk({"refusal": "no"}),
              chunk({"content": None})]
    acc = StreamAccumulator(False)
    acc.process_batch(stream)
    merged: dict[int, object] = {}
    from heliograph.proxy.streaming import _Choice
    for payload in stream:
        for choice in orjson.loads(payload)["choices"]:
            merged.setdefault(choice["index"], _Choice()).merge(choice)  # type: ignore[attr-defined]
    assert acc.completion()["choices"] == [merged[i].message(i)  # type: ignore[attr-defined]
                                           for i in sorted(merged)]


def test_openai_render_batch_is_each_payload_framed():
    from heliograph.proxy.fronts import OpenAIStream

    payloads = [b'{"a":1}', b"[x]", b""]
    assert OpenAIStream.render_batch(payloads) == b"".join(sse.frame(p) for p in payloads)
    assert OpenAIStream.render_batch([]) == b""


# --- text chunks cut out of the bytes, not parsed ------------------------------------------------

TRICKY = ['plain', '', 'a "quoted" word', 'ends with a quote"', 'back\\slash', 'two \\\\',
          '\\"', '"},"logprobs":null,"finish_reason":null}]', 'new\nline\ttab', 'caf\u00e9 \u2603',
          '\U0001f600 emoji', '}]', '\\', 'x\\"},"finish_reason":null}]']


def _openai_chunk(text: str, logprobs: bool = True) -> bytes:
    """A text chunk byte for byte as OpenAI writes it (key order, separators)."""
    choice = {"index": 0, "delta": {"content": text}}
    if logprobs:
        choice["logprobs"] = None
    choice["finish_reason"] = None
    return orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 5,
                         "model": "m", "choices": [choice], "usage": None})


def test_text_chunks_cut_out_give_what_parsing_every_chunk_does(monkeypatch):
    from heliograph.proxy import streaming

    streams = [
        [chunk({"role": "assistant", "content": ""}), *map(_openai_chunk, TRICKY),
         chunk(finish="stop"), chunk(choices=False, usage=USAGE)],
        [chunk({"role": "assistant"}), _openai_chunk("a"),
         chunk({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]}),
         _openai_chunk("b", logprobs=False), chunk({"content": "c"}, index=1),
         _openai_chunk("d"), chunk(finish="stop")],
        [chunk({"role": "assistant"}), _openai_chunk("ok"),
         _openai_chunk("bad").replace(b'"bad"', b'"b\\qd"'), _openai_chunk("!")],
        [chunk(choices=False, cid=""), _openai_chunk("before the id")],
        # Framed as a text chunk (same start, same end) but with more after the text.
        [_openai_chunk("a"), _openai_chunk("b").replace(b'"b"', b'"b","role":"tool"'),
         _openai_chunk("c").replace(b'"c"', b'"c","x":"\\""'), _openai_chunk("d")],
    ]
    for stream in streams:
        cut = StreamAccumulator(True)
        cut.process_batch(stream)
        parsed = StreamAccumulator(True)
        parsed.process_batch(stream)
        with monkeypatch.context() as patch:
            patch.setattr(streaming, "_text_delta", lambda payload: None)
            patch.setattr(streaming, "_finish_only", lambda payload, start=-1: None)
            expected = parsed.completion()
        assert cut.completion() == expected
        if stream is streams[-1]:
            assert expected["choices"][0]["message"] == {"role": "tool", "content": "abcd"}
    assert streams[3] and orjson.loads(streams[4][2])["choices"][0]["delta"]["x"] == '"'
    expected = StreamAccumulator(True)
    expected.process_batch(streams[3])
    assert expected.completion()["choices"][0]["message"]["content"] == "before the id"
    content = StreamAccumulator(True)
    content.process_batch(streams[0])
    assert content.completion()["choices"][0]["message"]["content"] == "".join(TRICKY)
    assert all(streaming._text_delta(_openai_chunk(t)) == orjson.dumps(t) for t in TRICKY)


# --- the first text and the usual last chunk told from their bytes --------------------------------

def _finish_chunk(reason: str) -> bytes:
    """A finish chunk byte for byte as OpenAI writes it."""
    return orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 5,
                         "model": "m", "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                                   "finish_reason": reason}], "usage": None})


def _parsed_only(monkeypatch, make):
    """What `make()` gives with no chunk told from its bytes (every one parsed)."""
    from heliograph.proxy import streaming

    with monkeypatch.context() as patch:
        patch.setattr(streaming, "_text_delta", lambda payload: None)
        patch.setattr(streaming, "_finish_only", lambda payload, start=-1: None)
        return make()


def test_the_first_text_is_seen_without_a_parse_as_with_one(monkeypatch):
    """The first content of the usual text chunk is told from its bytes (no parse): the
    moment it is seen (time to first token) is the same as when every chunk is parsed."""
    from heliograph.proxy import streaming

    streams = [[chunk({"role": "assistant", "content": ""}), _openai_chunk(""),
                _openai_chunk(t), _openai_chunk("more")] for t in TRICKY if t] + [
        [chunk({"role": "assistant"}), _openai_chunk("")],
        [_openai_chunk("no id before it"), _openai_chunk("x")], *_streams()]

    def seen(stream: list[bytes]) -> list[bool]:
        acc = StreamAccumulator(True)
        return [acc.process(p) is not None and acc.saw_content for p in stream]

    for stream in streams:
        assert seen(stream) == _parsed_only(monkeypatch, lambda s=stream: seen(s)), stream
    parses = []
    real = streaming.event_object
    monkeypatch.setattr(streaming, "event_object", lambda p: parses.append(p) or real(p))
    acc = StreamAccumulator(True)
    for payload in [chunk({"role": "assistant", "content": ""}), _openai_chunk("Hi")]:
        acc.process(payload)
    assert acc.saw_content and len(parses) == 1    # the role chunk only


def test_the_finish_chunk_is_merged_without_a_parse_as_with_one(monkeypatch):
    from heliograph.proxy import streaming

    reasons = ["stop", "length", "", "caf\u00e9", 'a "quoted" one', "back\\slash"]
    for reason in reasons:
        for stream in ([chunk({"role": "assistant"}), _openai_chunk("a"), _finish_chunk(reason)],
                       [chunk({"role": "assistant"}), _finish_chunk(reason)],
                       [_finish_chunk(reason), _openai_chunk("b")],
                       [chunk({"role": "assistant"}), _finish_chunk(reason),
                        chunk(finish="length", index=1)]):
            def completion(stream=stream):
                acc = StreamAccumulator(True)
                acc.process_batch(stream)
                return acc.completion()
            assert completion() == _parsed_only(monkeypatch, completion), (reason, stream)
    assert streaming._finish_only(_finish_chunk("stop")) == b'"stop"'
    assert streaming._finish_only(_finish_chunk('a "q"')) is None   # escaped: parsed
    assert streaming._finish_only(chunk({"content": "x"}, finish="stop")) is None


def test_a_stream_is_relayed_byte_for_byte_at_every_split_point():
    """An OpenAI stream read in two reads cut at every byte: the caller gets the same
    bytes (less the usage we asked for) and the log the same answer, as in one read."""

    events = [chunk({"role": "assistant", "content": ""}), *map(_openai_chunk, TRICKY),
              _finish_chunk("stop"), chunk(choices=False, usage=USAGE), b"[DONE]"]
    body = b"".join(sse.frame(e) for e in events)

    async def every_cut(strip: bool, framed: bool) -> list[tuple[bytes, dict]]:
        return [await _relay([body[:cut], body[cut:]], strip, framed)
                for cut in range(1, len(body))]

    for strip, framed in [(True, False), (False, False), (True, True), (False, True)]:
        whole, logged = asyncio.run(_relay([body], strip, framed))
        expected = body if not strip else b"".join(
            sse.frame(e.replace(b',"usage":null}', b"}")) for e in events if b'":{"prompt' not in e)
        assert whole == expected and b'"usage"' not in whole or not strip
        assert logged["choices"][0]["message"]["content"] == "".join(TRICKY)
        assert logged["choices"][0]["finish_reason"] == "stop" and logged["usage"] == USAGE
        for cut, got in enumerate(asyncio.run(every_cut(strip, framed)), start=1):
            assert got == (whole, logged), cut


def test_chunks_read_while_relaying_are_merged_as_parsed_not_scanned_again(monkeypatch):
    """The role chunk and the usage chunk are parsed while the stream is relayed: the log
    merges those objects and looks for no text or finish in their bytes, with the same
    answer as when every chunk is parsed."""
    from heliograph.proxy import streaming

    role, usage = chunk({"role": "assistant", "content": ""}), chunk(choices=False, usage=USAGE)
    streams = [[role, _openai_chunk("Hi"), _openai_chunk(" there"), _finish_chunk("stop"),
                usage],
               # Azure: the first text comes before any id, so it is parsed too.
               [chunk(choices=False, cid=""), _openai_chunk("a"), _openai_chunk("b"), usage]]
    for stream in streams:
        acc = StreamAccumulator(True)
        acc.process_batch(stream)
        scanned: list[bytes] = []
        for name in ("_text_delta", "_finish_only"):
            real = getattr(streaming, name)
            monkeypatch.setattr(streaming, name,
                                lambda p, *at, real=real, seen=scanned: seen.append(p) or real(p, *at))
        got = acc.completion()
        monkeypatch.undo()
        assert usage not in scanned and role not in scanned, scanned

        def parsed_all(stream=stream):
            every = StreamAccumulator(True)
            every.process_batch(stream)
            return every.completion()
        assert got == _parsed_only(monkeypatch, parsed_all)
        assert got["usage"] == USAGE


# --- OpenAI's obfuscation member -----------------------------------------------------------------

def _obfuscated(payload: bytes, value: str) -> bytes:
    """The chunk as OpenAI writes it since 2025: a random `"obfuscation"` string last."""
    return payload[:-1] + b',"obfuscation":"' + value.encode() + b'"}'


def test_obfuscated_chunks_lose_only_their_null_usage_and_are_not_parsed(monkeypatch):
    """OpenAI's chunks end with `"usage":null,"obfuscation":"…"` today: the usage we asked
    for is cut from the bytes (the rest relayed exactly as it came, escapes included), not
    parsed and written again; only the role and the usage chunk are read."""
    from heliograph.proxy import streaming

    # OpenAI writes some characters as \u escapes; a chunk written again would not.
    escaped = _openai_chunk("caf\u00e9").replace("é".encode(), b"\\u00e9")
    stream = [_obfuscated(chunk({"role": "assistant", "content": ""}), "Kq7"),
              _obfuscated(_openai_chunk("Hi"), "x2LmP9w4"), _obfuscated(escaped, "R"),
              _obfuscated(_openai_chunk(' "quoted"'), "tV8b0"),
              _obfuscated(_finish_chunk("stop"), "Zq"),
              _obfuscated(chunk(choices=False, usage=USAGE), "pad"), b"[DONE]"]
    parsed: list[bytes] = []
    real = streaming.event_object
    monkeypatch.setattr(streaming, "event_object",
                        lambda payload: parsed.append(payload) or real(payload))
    for batches in ([stream], [[p] for p in stream]):
        parsed.clear()
        acc = StreamAccumulator(strip_usage=True)
        sent = [out for batch in batches for out in acc.process_batch(batch)]
        assert sent == [p.replace(b',"usage":null,"obfuscation"', b',"obfuscation"')
                        for p in stream[:-2]]
        # The role chunk: only its members before the choices (_read_role_only); the
        # usage chunk: only its usage (_read_usage_only).
        assert parsed == [stream[0][:stream[0].index(b',"choices"')] + b"}",
                          orjson.dumps(USAGE)]
        assert acc.done and acc.usage == USAGE
        # The caller who asked for the usage gets every chunk as it came.
        own = StreamAccumulator(strip_usage=False)
        assert [out for batch in batches for out in own.process_batch(batch)] == stream[:-1]
    monkeypatch.undo()
    logged = acc.completion()
    assert logged["choices"] == [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": 'Hicaf\u00e9 "quoted"'}}]
    every = StreamAccumulator(True)
    every.process_batch(stream)
    assert logged == _parsed_only(monkeypatch, every.completion)


def test_a_null_usage_not_just_before_a_last_obfuscation_is_parsed_as_before():
    for payload in (b'{"a":{"b":1,"usage":null,"obfuscation":"x"}}',     # nested
                    b'{"a":1,"usage":null,"obfuscation":"x\\"}',        # value not closed
                    b'{"a":1,"usage":null,"obfuscation":"a\\"b"}',      # a quote in it
                    b'{"usage":null,"obfuscation":"x"}', b'"}', b'}'):
        assert streaming_cut(payload) is None
    assert streaming_cut(b'{"a":1,"usage":null,"obfuscation":""}') == b'{"a":1,"obfuscation":""}'


def streaming_cut(payload: bytes) -> bytes | None:
    from heliograph.proxy.streaming import _cut_obfuscated_null_usage
    return _cut_obfuscated_null_usage(payload)


def test_obfuscated_text_chunks_are_cut_out_as_parsing_every_chunk_gives(monkeypatch):
    """After the first text, the next text chunks are told by the bytes around the text up
    to the obfuscation string (whose length varies): none is scanned for its text again,
    and the answer is what parsing every chunk gives, tricky texts and odd values alike."""

    values = ["Kq7", "", "x2LmP9w4Rt8Vb", "a"]
    texts = [_obfuscated(_openai_chunk(text), values[i % len(values)])
             for i, text in enumerate(TRICKY)]
    odd = [_obfuscated(_openai_chunk("a"), 'q\\"uote'), _obfuscated(_openai_chunk("b"), "z\\\\"),
           _openai_chunk("no obfuscation"), _obfuscated(_openai_chunk("c"), "ok")]
    for stream in ([_obfuscated(chunk({"role": "assistant", "content": ""}), "r"), *texts,
                    _obfuscated(_finish_chunk("stop"), "f")],
                   [chunk({"role": "assistant"}), *texts[:3], *odd]):
        got, scanned = _completion_and_texts_searched(monkeypatch, stream)
        every = StreamAccumulator(True)
        every.process_batch(stream)
        assert got == _parsed_only(monkeypatch, every.completion)
        assert not set(scanned) & set(texts[1:])
    assert got["choices"][0]["message"]["content"] == "".join(TRICKY[:3]) + "abno obfuscationc"


# --- text chunks relayed and cut for the log in one step (process_batch) --------------------------

def _no_usage_chunk(text: str, usage: dict | None = None) -> bytes:
    """A text chunk as OpenAI writes it when nobody asked for the usage: no usage member.
    The text's place is the same with a `usage` (then before the choices) as without."""
    member = b'"usage":' + orjson.dumps(USAGE) if usage else b'"p":"' + b"x" * 60 + b'"'
    assert len(member) == len(b'"p":"' + b"x" * 60 + b'"')
    return b'{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m",' + member + \
        b',"choices":[{"index":0,"delta":{"content":' + orjson.dumps(text) + \
        b'},"logprobs":null,"finish_reason":null}]}'


def test_text_chunks_of_the_first_ones_shape_are_relayed_and_logged_as_one_by_one(monkeypatch):
    """process_batch tells the next text chunks by the first one's shape and relays each
    with its text cut out for the log in the same step: what the caller gets, the usage
    and the logged answer are those of the chunks processed one by one, and the answer
    is what parsing every chunk gives, at every point the stream is cut into two reads —
    with a usage where the shape has none (read, not relayed blindly), a chunk of another
    id, escapes, obfuscation strings that do not end or end in a backslash."""
    role = chunk({"role": "assistant", "content": ""})
    usage_first = _no_usage_chunk("u", usage=USAGE)
    assert orjson.loads(usage_first)["usage"] == USAGE
    streams = [
        # No usage member (the caller did not ask, and Helicone-Stream-Usage is off).
        [role, *map(_no_usage_chunk, ["a", "b\\", '"q"']), usage_first, _no_usage_chunk("c"),
         b"[DONE]"],
        # The usual null usage, a chunk of another id and one with the usage before it.
        [role, _openai_chunk("Hi"), _openai_chunk(" x").replace(b'"c1"', b'"c2-longer"'),
         _openai_chunk("y").replace(b'{"id"', b'{"usage":null,"id"'), _openai_chunk("!"),
         _finish_chunk("stop"), chunk(choices=False, usage=USAGE), b"[DONE]"],
        # Obfuscated, with and without the null usage, odd strings at the end.
        [_obfuscated(role, "r"), *[_obfuscated(_openai_chunk(t), v) for t, v in
                                   [("a", "Kq7"), ("b", ""), ("c", 'x\\"'), ("d", "z\\\\"),
                                    ("e", 'q\\"u'), ("f", "ok")]],
         _obfuscated(chunk(choices=False, usage=USAGE), "p"), b"[DONE]"],
        # An obfuscation string that does not end (not JSON): relayed as it came.
        [_obfuscated(role, "r"), _obfuscated(_openai_chunk("a"), "Kq"),
         _obfuscated(_openai_chunk("b"), "x\\"), _obfuscated(_openai_chunk("c"), "ok"),
         _obfuscated(chunk(choices=False, usage=USAGE), "p"), b"[DONE]"],
        [_obfuscated(role, "r"), *[_obfuscated(_no_usage_chunk(t), v) for t, v in
                                   [("a", "Kq7"), ("b", "x2"), ("c", "")]],
         _obfuscated(usage_first, "u"), _obfuscated(_no_usage_chunk("d"), "d"), b"[DONE]"],
    ]
    for stream in streams:
        for strip in (True, False):
            one = StreamAccumulator(strip)
            expected = _one_by_one(one, stream)
            everything = _parsed_only(monkeypatch, lambda s=stream, strip=strip: (
                lambda acc: (acc.process_batch(s), acc.completion())[1])(
                    StreamAccumulator(strip)))
            if b'"x\\"}' not in b"".join(stream):    # all JSON
                assert one.completion() == everything, (stream, strip)
            for cut in range(len(stream) + 1):
                batched = StreamAccumulator(strip)
                got = batched.process_batch(stream[:cut])
                if not batched.done:
                    got += batched.process_batch(stream[cut:])
                assert got == expected, (stream, strip, cut)
                assert (batched.done, batched.usage, batched.saw_content) == \
                    (one.done, one.usage, one.saw_content), (stream, strip, cut)
                assert batched.completion() == one.completion(), (stream, strip, cut)
            assert one.usage == USAGE


def test_an_obfuscated_stream_is_relayed_byte_for_byte_at_every_split_point():
    """OpenAI's stream as it is sent today (every chunk ending with a random obfuscation
    string), read in two reads cut at every byte, with LF or CRLF line ends and with an
    event whose JSON spans two data lines: the caller gets each chunk less the null usage
    we asked for (and no usage chunk), and the log gets the whole text."""

    texts = ["Hi", " caf\u00e9", ' "q"', "\\", "!"]
    events = [_obfuscated(chunk({"role": "assistant", "content": ""}), "Kq7"),
              *[_obfuscated(_openai_chunk(t), "x2LmP9w4"[:i]) for i, t in enumerate(texts)],
              _obfuscated(_finish_chunk("stop"), "Zq"),
              _obfuscated(chunk(choices=False, usage=USAGE), "pad"), b"[DONE]"]
    expected = b"".join(sse.frame(e.replace(b',"usage":null', b""))
                        for e in events if b'"prompt_tokens"' not in e)
    lf = b"".join(sse.frame(e) for e in events)
    two_lines = lf.replace(b'"choices":[{"index":0,"delta":{"content":" caf',
                           b'\ndata: "choices":[{"index":0,"delta":{"content":" caf')
    assert two_lines != lf

    async def every_cut(body: bytes, framed: bool) -> list[tuple[bytes, dict]]:
        return [await _relay([body[:cut], body[cut:]], True, framed)
                for cut in range(1, len(body))]

    for body, framed in [(b, f) for b in (lf, lf.replace(b"\n", b"\r\n"), two_lines)
                         for f in (False, True)]:
        for got, logged in asyncio.run(every_cut(body, framed)):
            if body is two_lines:   # that event is relayed as its data lines joined
                got = got.replace(b'\n"choices":[{"index":0,"delta":{"content":" caf',
                                  b'"choices":[{"index":0,"delta":{"content":" caf')
            assert got == expected
            assert logged["choices"][0]["message"]["content"] == "".join(texts)
            assert logged["usage"] == USAGE and logged["choices"][0]["finish_reason"] == "stop"


async def _relay(reads: list[bytes], strip: bool, framed: bool = False) -> tuple[bytes, dict]:
    """What the caller gets of a stream arriving in `reads` (the OpenAI front's rendering;
    `framed`: its accumulator too) and what the log gets."""
    from heliograph.proxy.fronts import OpenAIStream

    async def chunks():
        for read in reads:
            yield read

    acc = _framed(strip) if framed else StreamAccumulator(strip)
    renderer, out = OpenAIStream(), []
    async for batch in sse.EventBatches(chunks()):
        out.append(renderer.render_batch(acc.process_batch(batch)))
        if acc.done:
            out.append(renderer.finish())
            break
    return b"".join(out), acc.completion()


# --- the usual last chunk told where the text chunks had their choices -----------------------------

def test_the_finish_chunk_is_told_where_the_text_chunks_had_their_choices(monkeypatch):
    """Once the relay knows where the text chunks have their choices, the log tells the
    usual last chunk by one comparison there: neither searched for a text nor for its
    finish, with the answer parsing every chunk gives (a reason it cannot read that way,
    escaped or in another place, is read as before)."""

    for reason in ("stop", "length", "", 'a "quoted" one', "back\\slash"):
        for finish in (_finish_chunk(reason),
                       _finish_chunk(reason).replace(b'"id":"c1"', b'"id":"c1-longer"')):
            stream = [chunk({"role": "assistant", "content": ""}), _openai_chunk("a"),
                      _openai_chunk("b"), finish, chunk(choices=False, usage=USAGE)]
            got, searched = _completion_and_texts_searched(monkeypatch, stream)
            usual = b"\\" not in finish and finish == _finish_chunk(reason)
            assert (searched == []) == usual, (reason, finish)

            def parsed_all(stream=stream):
                every = StreamAccumulator(True)
                every.process_batch(stream)
                return every.completion()
            assert got == _parsed_only(monkeypatch, parsed_all), (reason, finish)
            assert got["choices"][0]["finish_reason"] == (reason or None)


def test_members_of_the_wrong_type_read_as_absent_in_the_logged_answer():
    """The log's merge reads a provider's chunk leniently, as chunk_fields does: a choice
    that is no object, an index that is no integer (a bool is none), a delta that is no
    object, a content, role or finish reason that is no string read as absent."""
    odd = [{"id": "c1", "created": True, "model": 5, "choices": {"index": 0}},
           {"choices": ["x", {"index": True, "delta": {"content": "bool index"}},
                      {"index": "0", "delta": {"content": "text index"}},
                      {"index": 0, "delta": "not an object", "finish_reason": 3},
                      {"delta": {"content": 7, "role": ["r"]}},
                      {"index": 0, "delta": {"content": "kept", "role": "tool",
                                             "tool_calls": "no list"}},
                      {"index": 1, "delta": {"tool_calls": [
                          "x", {"index": 0, "id": "t", "function": "no object"}]}}]}]
    acc = StreamAccumulator(False)
    acc.process_batch([orjson.dumps(c) for c in odd])
    logged = acc.completion()
    assert (logged["id"], logged["model"], logged["created"]) == ("c1", None, None)
    assert logged["choices"] == [
        {"index": 0, "finish_reason": None, "message": {"role": "tool", "content": "kept"}},
        {"index": 1, "finish_reason": None, "message": {
            "role": "assistant", "content": None, "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "", "arguments": ""}}]}}]
    assert acc.saw_content


def _completion_and_texts_searched(monkeypatch, stream: list[bytes]):
    """The logged answer of `stream` relayed by one accumulator, and the payloads its
    completion searched for a text (`_text_delta`) rather than telling them by shape."""
    from heliograph.proxy import streaming

    acc = StreamAccumulator(True)
    acc.process_batch(stream)
    searched: list[bytes] = []
    real = streaming._text_delta
    monkeypatch.setattr(streaming, "_text_delta",
                        lambda p, real=real, seen=searched: seen.append(p) or real(p))
    got = acc.completion()
    monkeypatch.undo()
    return got, searched


# --- a read's run of usual text chunks in one step (_text_run) ------------------------------------

def _framed(strip: bool) -> StreamAccumulator:
    """The OpenAI front's accumulator: what it gives is only framed and joined."""
    from heliograph.proxy.fronts import OPENAI

    acc = OPENAI.accumulator(strip)
    assert isinstance(acc, StreamAccumulator) and acc.framed
    return acc


def _rendered(payloads: list[bytes]) -> bytes:
    from heliograph.proxy.fronts import OpenAIStream

    return OpenAIStream.render_batch(payloads)


def test_a_run_of_text_chunks_is_relayed_as_one_item_framed_as_each_payload():
    """The OpenAI front's accumulator relays a read's run of usual text chunks (the same
    id, model and bytes around the text) as one item, the payloads joined as a read holds
    them, each less the null usage we asked for: the caller gets the bytes of every chunk
    processed one by one, and the log the same answer."""
    texts = ["Sure", "!", " Here", ' "q"', "caf\u00e9", "\\", ""]
    stream = [chunk({"role": "assistant", "content": "", "refusal": None}),
              *map(_openai_chunk, texts), _finish_chunk("stop"),
              chunk(choices=False, usage=USAGE), b"[DONE]"]
    for strip in (True, False):
        one = StreamAccumulator(strip)
        expected = _one_by_one(one, stream)
        acc = _framed(strip)
        got = acc.process_batch(stream)
        # role, first text, the run of the other texts, finish (and the usage when kept)
        assert len(got) == 4 + (not strip), got
        assert _rendered(got) == _rendered(expected)
        assert got[2] == b"\n\ndata: ".join(expected[2:len(texts) + 1])
        assert (acc.done, acc.usage, acc.saw_content, acc.id) == \
            (one.done, one.usage, one.saw_content, one.id)
        assert acc.completion() == one.completion()
        assert acc.completion()["choices"][0]["message"]["content"] == "".join(texts)


def test_text_runs_relay_and_log_what_chunks_one_by_one_do_at_every_read_cut():
    """Runs broken by a chunk that only looks like the usual one (another id of the same
    length, a byte changed around the text, a usage before the choices, a tool call, a
    text that is no JSON string), without a usage member, obfuscated (no run: read chunk
    by chunk): at every point the stream is cut into two reads, framed or not, the caller
    gets the bytes and the log the answer of the chunks processed one by one."""
    role = chunk({"role": "assistant", "content": ""})
    texts = [_openai_chunk(t) for t in ["a", "b", "c", "d"]]
    tool = chunk({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]})
    streams = [
        [role, *texts, _finish_chunk("stop"), chunk(choices=False, usage=USAGE), b"[DONE]"],
        [role, *texts[:2], _openai_chunk("x").replace(b'"c1"', b'"c9"'), *texts[2:]],
        [role, *texts[:2], _openai_chunk("x").replace(b'"logprobs"', b'"logprobz"'),
         *texts[2:], b"[DONE]"],
        [role, *texts[:3], _openai_chunk("y").replace(b'{"id"', b'{"usage":null,"id"'),
         texts[3]],
        [role, *texts[:2], tool, *texts, _finish_chunk("tool_calls")],
        [role, *texts[:2], _openai_chunk("q").replace(b'"q"', b'"q","x":"\\""'), *texts],
        [role, *texts[:2], _openai_chunk("q").replace(b'"q"', b'"a\\qb"'), *texts[2:]],
        # The text's own quotes moved: the same length, head and tail, no JSON string.
        [role, *texts[:2], _openai_chunk("ab").replace(b':"ab"', b':xab"'), *texts[2:]],
        [role, *texts[:2], _openai_chunk("ab").replace(b':"ab"', b':"abx'), *texts[2:]],
        [role, *texts[:2], _openai_chunk("ab").replace(b':"ab"', b':"a"b'), *texts[2:]],
        [role, *texts[:2], _openai_chunk("ab").replace(b':"ab"', b':1234'), *texts[2:]],
        [role, *map(_no_usage_chunk, ["a", "b", "c"]), _no_usage_chunk("u", usage=USAGE),
         *map(_no_usage_chunk, ["d", "e", "f"]), b"[DONE]"],
        [_obfuscated(role, "r"), *[_obfuscated(t, "Kq7"[:i]) for i, t in enumerate(texts)],
         _obfuscated(chunk(choices=False, usage=USAGE), "p"), b"[DONE]"],
        [chunk(choices=False, cid=""), *texts, _finish_chunk("stop")],
    ]
    for stream in streams:
        for strip in (True, False):
            one = StreamAccumulator(strip)
            expected = _rendered(_one_by_one(one, stream))
            for cut in range(len(stream) + 1):
                for make in (StreamAccumulator, _framed):
                    batched = make(strip)
                    got = batched.process_batch(stream[:cut])
                    if not batched.done:
                        got += batched.process_batch(stream[cut:])
                    assert _rendered(got) == expected, (stream, strip, cut, make)
                    assert (batched.done, batched.usage, batched.saw_content, batched.id) == \
                        (one.done, one.usage, one.saw_content, one.id), (stream, strip, cut)
                    assert batched.completion() == one.completion(), (stream, strip, cut)


# --- the usual first chunk read without its choices (_read_role_only) ------------------------------

def test_the_usual_role_chunk_is_read_without_parsing_its_choices(monkeypatch):
    """The usual first chunk (the first choice's role and an empty content, nothing else)
    has only its members before the choices parsed (its id, model and creation time); any
    other first chunk is parsed whole. Either way the caller gets the same bytes and the
    log the same answer as when every first chunk is parsed whole."""
    from heliograph.proxy import streaming

    role = chunk({"role": "assistant", "content": ""})
    refusal = chunk({"role": "assistant", "content": "", "refusal": None})
    no_logprobs = role.replace(b'"logprobs":null,', b"")
    no_usage = role.replace(b',"usage":null}', b"}")
    usual = [role, refusal, no_logprobs, no_usage, _obfuscated(role, "Kq7"),
             _obfuscated(no_usage, "x2L"), role.replace(b'"created":5', b'"created":true')]
    others = [_obfuscated(role, "a-b"), _obfuscated(role, 'q\\"'),
              role.replace(b'{"id"', b'{"usage":null,"id"'),
              role.replace(b'{"id"', b'{"choices":[],"id"'), chunk({"role": "user", "content": ""}),
              chunk({"role": "assistant", "content": "Hi"}), chunk({"role": "assistant"}),
              chunk({"role": "assistant", "content": ""}, cid=""),
              role.replace(b'"model":"m"', b'"model":"m",'), b"{" + role[role.index(b',"choices"'):]]
    parses: list[bytes] = []
    real = streaming.event_object
    for first in usual + others:
        stream = [first, _openai_chunk("a"), _openai_chunk("b"), _finish_chunk("stop"),
                  chunk(choices=False, usage=USAGE)]
        for strip in (True, False):
            def run(stream=stream, strip=strip):
                acc = StreamAccumulator(strip)
                out = acc.process_batch(stream)
                return out, acc.completion(), (acc.id, acc.model, acc.created, acc.saw_content)
            parses.clear()
            monkeypatch.setattr(streaming, "event_object", lambda p: parses.append(p) or real(p))
            got = run()
            monkeypatch.undo()
            with monkeypatch.context() as patch:
                patch.setattr(StreamAccumulator, "_read_role_only", lambda self, payload: None)
                assert got == run(), (first, strip)
            if first in usual:
                assert first not in parses and parses[0] == \
                    first[:first.index(b',"choices"')] + b"}", first
            else:
                assert first in parses or not first.startswith(b'{"id"'), first


def test_the_usual_usage_chunk_is_read_by_its_usage_alone(monkeypatch):
    """After the usual first chunk, a usage chunk with the same members before its
    (empty) choices has only its usage parsed; any other is parsed whole. Either way the
    caller gets the same bytes (the usage we asked for taken out) and the log the same
    usage and answer as when every usage chunk is parsed whole."""
    from heliograph.proxy import streaming

    role = chunk({"role": "assistant", "content": ""})
    usage = chunk(choices=False, usage=USAGE)
    no_usage_member = role.replace(b',"usage":null}', b"}")
    usual = [usage, _obfuscated(usage, "pad"), usage.replace(b'"total_tokens":5', b'"total_tokens":5 '),
             usage.replace(b"{\"prompt", b"{\"prompt\":1,\"prompt")]
    others = [usage.replace(b'"c1"', b'"c2"'), chunk(choices=False, usage={}),
              usage.replace(b'"usage":{', b'"usage":null,"x":{'),
              usage[:-1] + b',"x":1}',
              usage.replace(b'"total_tokens":5}', b'"total_tokens":5'), _obfuscated(usage, "a-b"),
              chunk({"content": "x"}, usage=USAGE), usage.replace(b'"usage":{', b'"usage":[{') + b"]"]
    parses: list[bytes] = []
    real = streaming.event_object
    for first in (role, _obfuscated(role, "r"), no_usage_member, chunk({"role": "assistant"})):
        for last in usual + others:
            stream = [first, _openai_chunk("a"), _openai_chunk("b"), _finish_chunk("stop"), last,
                      b"[DONE]"]
            for strip, whole in [(s, w) for s in (True, False) for w in (True, False)]:
                def run(stream=stream, strip=strip, whole=whole):
                    acc = StreamAccumulator(strip)
                    if whole:
                        out = acc.process_batch(stream)
                    else:
                        out = [o for p in stream if (o := acc.process(p)) is not None]
                    return out, acc.completion(), acc.usage
                parses.clear()
                monkeypatch.setattr(streaming, "event_object",
                                    lambda p: parses.append(p) or real(p))
                got = run()
                monkeypatch.undo()
                with monkeypatch.context() as patch:
                    patch.setattr(StreamAccumulator, "_read_usage_only", lambda self, p: False)
                    assert got == run(), (first, last, strip, whole)
                read_alone = first in (role, _obfuscated(role, "r"), no_usage_member) and \
                    last in usual
                assert (last not in parses) == read_alone, (first, last)
                if read_alone:
                    assert got[2] == orjson.loads(last)["usage"]
                    assert (last not in got[0]) if strip else (last in got[0])
