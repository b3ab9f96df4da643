"""Journal lines across versions: segments already on disk when the gateway is upgraded
(written as JSON objects, with or without the bodies apart) are read and stored exactly as
the positional lines written now, and a line of a layout this version does not know
(written by a newer one) is never dropped."""

import orjson

from heliograph.store.journal import LAYOUT, Journal, closed_segments, decode_line, encode_line
from heliograph.store.writer import SegmentWriter


def object_line(rec: dict) -> bytes:
    """A line as session 8's journal wrote it: the record's JSON object, bodies last
    between tabs."""
    rest = {k: v for k, v in rec.items() if k not in ("request", "response")}
    head = orjson.dumps(rest)
    return b"".join((head[:-1], b',"request":\t', orjson.dumps(rec["request"]),
                     b'\t,"response":\t', orjson.dumps(rec["response"]), b"\t}\n"))


def plain_line(rec: dict) -> bytes:
    """A line as the journal wrote it before the bodies went apart: plain JSON."""
    return orjson.dumps(rec) + b"\n"


def records(make_record) -> list[dict]:
    return [make_record(f"r{i}", at=f"2024-03-04T10:00:0{i}.000000Z", model="m",
                        status=200 if i % 2 else 429, user_id=f"u{i % 2}",
                        session_id="s1", properties={"env": "prod", "Feature": "x"},
                        prompt_tokens=3, completion_tokens=i, cost_usd=0.5 * i,
                        cost_known=True, latency_ms=10.0 * i,
                        attempts=[{"provider": "p", "status": 429}] if i % 2 == 0 else [],
                        request={"messages": [{"role": "user", "content": f"hi\t{i}"}]},
                        response={"id": i} if i != 3 else None)
            for i in range(6)]


def test_segments_of_every_earlier_line_format_are_stored_as_the_new_ones(
        tmp_path, store, reader, make_record):
    recs = records(make_record)
    directory = tmp_path / "journal"
    journal = Journal(directory)
    journal.append(recs[0])
    journal.close()
    (new_segment,) = closed_segments(directory)
    assert new_segment.read_bytes().startswith(b"[%d," % LAYOUT)
    # An older segment, lines of both earlier formats, as an upgrade finds it on disk.
    (directory / "1-0-0.jsonl").write_bytes(
        b"".join(object_line(r) for r in recs[1:4]) + b"".join(plain_line(r) for r in recs[4:]))
    assert SegmentWriter(directory, store).drain()
    assert not closed_segments(directory)

    for rec in recs:
        stored = reader.get_request("org1", rec["id"])
        assert stored == rec
    # The rollups counted each record once, whatever its line format.
    with store.transaction() as cur:
        for table in ("rollup_daily_totals", "rollup_users", "rollup_property_daily"):
            assert store.execute(cur, f"SELECT SUM(requests) FROM {table}").fetchone()[0] \
                == 6 * (2 if table == "rollup_property_daily" else 1), table


def test_object_and_positional_lines_decode_to_the_same_record(make_record):
    for rec in records(make_record):
        positional = decode_line(encode_line(rec).rstrip(b"\n"))
        from_object = decode_line(object_line(rec).rstrip(b"\n"))
        assert positional.keys() == from_object.keys()
        for key in rec:
            a, b = positional[key], from_object[key]
            if key in ("request", "response") and a is not None:
                a, b = a.text, b.text
            assert a == b, key


def test_a_line_of_a_layout_this_version_does_not_know_keeps_its_segment(
        tmp_path, store, reader, make_record, caplog):
    """Written by a newer version (then downgraded): not skipped as torn, not the end of
    the other segments either. The segment stays for a writer that reads it."""
    recs = records(make_record)
    directory = tmp_path / "journal"
    directory.mkdir()
    unknown = directory / "1-0-0.jsonl"
    unknown.write_bytes(object_line(recs[0])
                        + b'[999,"r1","2024",\t{"a":1}\t,\tnull\t]\n')
    (directory / "1-0-1.jsonl").write_bytes(object_line(recs[2]))
    writer = SegmentWriter(directory, store)
    writer.drain()
    assert closed_segments(directory) == [unknown]
    assert reader.get_request("org1", "r0") is None       # kept in its segment
    assert reader.get_request("org1", "r2") is not None   # the next segment went in
    assert "unknown layout" in caplog.text


def test_a_line_that_is_json_but_no_record_keeps_its_segment(tmp_path, store):
    """A positional line without its tabs, or any JSON that is not an object, is kept
    for a version that reads it, rather than handed to the store as a record."""
    directory = tmp_path / "journal"
    directory.mkdir()
    for i, line in enumerate((b'[1,"r1","2024"]', b"5", b'["a",\t1\t,\t2\t]')):
        segment = directory / f"1-0-{i}.jsonl"
        segment.write_bytes(line + b"\n")
        SegmentWriter(directory, store).drain()
        assert closed_segments(directory) == [segment]
        segment.unlink()
