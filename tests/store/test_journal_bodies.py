"""Bodies go through the journal as JSON text the writer stores as written (never decoded
and encoded again), and every line is still one JSON object any reader takes."""

import os

import orjson

from heliograph.store.journal import (
    LAYOUT,
    LAYOUTS,
    BodyJSON,
    Journal,
    claim_segment,
    closed_segments,
)
from heliograph.store.writer import SegmentWriter

# Strings holding what would break a naive split: tabs, newlines, quotes, a NUL, escapes.
AWKWARD = {"model": "m", "messages": [{"role": "user",
                                       "content": 'a\tb\nc "q" \\t \x00 é 😀 "request":'}],
           "n": [1, 2.5, -0.0, None, True, {"deep": {"er": []}}]}


def journaled(tmp_path, records):
    journal = Journal(tmp_path / "journal")
    for rec in records:
        assert journal.append(rec) is True
    journal.close()
    return closed_segments(tmp_path / "journal")


def test_a_line_is_one_json_value_and_the_writer_gets_the_bodies_text(tmp_path, make_record):
    rec = make_record("r1", model="m", request=AWKWARD, response=None,
                      properties={"env": "prod\t1"})
    (segment,) = journaled(tmp_path, [rec])
    (line,) = segment.read_bytes().splitlines()
    # Any JSON reader takes it: the layout's number, the values in its order, the bodies.
    assert orjson.loads(line) == [LAYOUT, *(rec[k] for k in LAYOUTS[LAYOUT]),
                                  rec["request"], rec["response"]]

    fd, (got,) = claim_segment(segment)
    os.close(fd)
    assert type(got["request"]) is BodyJSON
    assert got["request"].text == orjson.dumps(AWKWARD).decode()
    assert got["response"] is None
    assert got.keys() == rec.keys()
    assert {k: v for k, v in got.items() if k != "request"} == {
        k: v for k, v in rec.items() if k != "request"}


def test_a_gateway_record_is_written_positionally_and_read_back_with_the_same_keys():
    """Every key of a record is in the layout the journal writes: a key added to
    RECORD_KEYS needs a new layout (journal.LAYOUTS), or every line falls back to the
    slower object form. The writer's dict has the layout's key objects, not copies."""
    from heliograph.records import RECORD_KEYS, new_record
    from heliograph.store.journal import decode_line, encode_line

    rec = new_record("r1", 1_700_000_000.0, "/v1/chat/completions")
    rec.update(model="m", properties={"a": "b"}, request={"x": 1})
    line = encode_line(rec)
    assert line.startswith(b"[%d," % LAYOUT)
    got = decode_line(line.rstrip(b"\n"))
    assert list(got) == [*LAYOUTS[LAYOUT], "request", "response"]
    assert got.keys() == set(RECORD_KEYS)
    assert {**got, "request": None} == {**rec, "request": None}
    assert got["request"].text == '{"x":1}'
    keys = {id(k) for k in LAYOUTS[LAYOUT]}
    assert all(id(k) in keys for k in got if k not in ("request", "response"))


def test_bodies_are_stored_as_written_and_read_back_equal(store, reader, make_record,
                                                          tmp_path):
    records = [make_record("with-both", model="m", request=AWKWARD,
                           response={"choices": [{"text": "ok\t"}]}),
               make_record("response-only", model="m", response=[1, "two"]),
               make_record("no-bodies", model="m")]
    segments = journaled(tmp_path, records)
    SegmentWriter(tmp_path / "journal", store).drain()
    assert not closed_segments(tmp_path / "journal")
    assert segments
    for rec in records:
        stored = reader.get_request("org1", rec["id"])
        assert (stored["request"], stored["response"]) == (rec["request"], rec["response"])


def test_lines_written_whole_before_this_format_and_torn_ones(tmp_path, make_record):
    """A plain JSON line (an older journal's) is read whole; a torn last line, whichever
    part it stops in, is skipped."""
    old = make_record("old", request={"a": 1}, response={"b": 2})
    new = make_record("new", request={"a": 1}, response={"b": 2})
    (segment,) = journaled(tmp_path, [new])
    new_line = segment.read_bytes()
    for cut in (len(new_line) - 3, new_line.index(b"\t") + 2, new_line.rindex(b"\t") - 1):
        segment.write_bytes(orjson.dumps(old) + b"\n" + new_line + new_line[:cut])
        fd, got = claim_segment(segment)
        os.close(fd)
        assert [r["id"] for r in got] == ["old", "new"]
        assert got[0]["request"] == {"a": 1}       # decoded: no text kept for it
        assert got[1]["request"].text == '{"a":1}'


def test_lines_with_tabs_elsewhere_are_read_as_plain_json():
    """Tabs as whitespace anywhere but around the bodies (another JSON writer's, or a
    body key in another place) never pass for the split format: the line is read whole."""
    from heliograph.store.journal import decode_line

    lines = [b'{"id":\t"a","request":\t{"x":1}\t,"response":\t{"y":2}\t}',   # five tabs
             b'{"id":"a","request":\t{"x":1}\t, "response":\t{"y":2}\t}',     # other key
             b'{"id":"a","request":\t{"x":1}\t,"response":\t{"y":2}\t }',     # space last
             b'\t{"id":"a","request":{"x":1},"response":null}\t']
    for line in lines:
        assert decode_line(line) == orjson.loads(line)
    split = decode_line(b'{"id":"a","request":\t{"x":1}\t,"response":\tnull\t}')
    assert (split["id"], split["request"].text, split["response"]) == ("a", '{"x":1}', None)
    alone = decode_line(b'{"request":\tnull\t,"response":\t[1]\t}')   # bodies only
    assert (alone["request"], alone["response"].text) == (None, "[1]")
