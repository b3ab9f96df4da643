"""A journaled body stays the bytes the journal holds until a store needs it otherwise:
PostgreSQL's COPY sends those bytes as the text column's value (no str made of them and
encoded back), SQLite binds their text. What is stored is the same text either way."""

import os

import orjson
import psycopg
import pytest
from servers import postgres_schema

from heliograph.analytics import open_analytics
from heliograph.store import open_store
from heliograph.store.journal import BodyJSON, Journal, claim_segment, closed_segments
from heliograph.store.writer import SegmentWriter

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")

# Beyond ASCII, beyond Latin-1 (a str of these is UCS-2 / UCS-4 in Python), and escapes.
WIDE = {"messages": [{"role": "user", "content": "café — 漢字 😀 \"q\" \t \x00 \\"}]}
LATIN1 = {"messages": [{"role": "user", "content": "café crème, naïve façade"}]}


def journaled(directory, records):
    journal = Journal(directory)
    for rec in records:
        assert journal.append(rec) is True
    journal.close()
    return closed_segments(directory)


def test_a_journaled_body_is_kept_as_the_bytes_of_its_line(tmp_path, make_record):
    (segment,) = journaled(tmp_path / "journal",
                           [make_record("r1", request=WIDE, response=[1, "é"])])
    fd, (got,) = claim_segment(segment)
    os.close(fd)
    assert type(got["request"]) is BodyJSON
    assert got["request"].raw == orjson.dumps(WIDE)      # the line's bytes, no str
    assert got["request"].text == orjson.dumps(WIDE).decode()
    assert got["response"].raw == orjson.dumps([1, "é"])


def stored_bodies(url: str, request_id: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT request_body, response_body, octet_length(request_body)"
            " FROM request_bodies WHERE request_id = %s", (request_id,)).fetchone()


def test_bodies_beyond_latin1_are_stored_as_the_journal_wrote_them(
        store, reader, store_kind, migrated_url, make_record, tmp_path):
    """Journaled (bytes) and handed over as Python values (a caller of insert_records):
    both stored as the JSON text orjson writes, byte for byte on PostgreSQL."""
    journaled(tmp_path / "journal", [make_record("journaled", model="m", request=WIDE,
                                                 response={"text": "漢字 😀"})])
    assert SegmentWriter(tmp_path / "journal", store).drain()
    store.insert_records([make_record("given", model="m", request=WIDE, response=None)])
    for request_id, response in (("journaled", {"text": "漢字 😀"}), ("given", None)):
        got = reader.get_request("org1", request_id)
        assert (got["request"], got["response"]) == (WIDE, response)
        if store_kind == "postgres":
            request_text, response_text, size = stored_bodies(migrated_url, request_id)
            assert request_text == orjson.dumps(WIDE).decode()
            assert size == len(orjson.dumps(WIDE))
            assert response_text == (None if response is None
                                     else orjson.dumps(response).decode())


@pytest.mark.skipif(not POSTGRES_URL, reason="HELIOGRAPH_TEST_POSTGRES_URL not set")
def test_a_url_asking_for_another_encoding_still_stores_and_reads_every_text(make_record,
                                                                           tmp_path):
    """The bodies go into COPY as UTF-8 bytes, and text of any script is read back: so
    the store's and the query API's sessions speak UTF-8 whatever the URL asks. In a
    LATIN1 session the server would read the bytes as LATIN1 (é as Ã©), and could not
    send back a text beyond it (漢字: UntranslatableCharacter, a 500 on the listing)."""
    with postgres_schema(POSTGRES_URL) as url:
        latin1_url = url + "&client_encoding=LATIN1"
        store = open_store(latin1_url)
        try:
            journaled(tmp_path / "journal", [
                make_record("r1", model="m", request=LATIN1, response={"text": "déjà"}),
                make_record("r2", model="m", request=WIDE)])
            assert SegmentWriter(tmp_path / "journal", store).drain()
        finally:
            store.close()
        request_text, response_text, _size = stored_bodies(url, "r1")   # read in UTF-8
        assert request_text == orjson.dumps(LATIN1).decode()
        assert response_text == '{"text":"déjà"}'
        reader = open_analytics(latin1_url)
        try:
            assert reader.get_request("org1", "r2")["request"] == orjson.loads(
                orjson.dumps(WIDE))
            assert reader.get_request("org1", "r1")["response"] == {"text": "déjà"}
        finally:
            reader.close()


def test_a_body_whose_bytes_are_not_utf8_is_stored_with_the_others(store, reader,
                                                                   make_record, tmp_path):
    """A damaged segment (the journal itself writes only UTF-8): the record is stored,
    its body with U+FFFD where the bytes were not text, saying so; the batch's other
    records go in as they are, and the segment is done."""
    directory = tmp_path / "journal"
    records = [make_record(f"r{i}", model="m", request={"content": f"ok {i} BAD é"},
                           response={"text": "fine"}) for i in range(3)]
    (segment,) = journaled(directory, records)
    lines = segment.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"BAD", b"\xff\xfe")   # r1's request body only
    segment.write_bytes(b"\n".join(lines))
    assert SegmentWriter(directory, store).drain()
    assert not closed_segments(directory)
    for i in (0, 2):
        got = reader.get_request("org1", f"r{i}")
        assert got["request"] == {"content": f"ok {i} BAD é"} and got["error"] is None
    damaged = reader.get_request("org1", "r1")
    assert damaged["request"] == {"content": "ok 1 \ufffd\ufffd é"}
    assert damaged["response"] == {"text": "fine"}
    assert "could not be stored" in damaged["error"]
