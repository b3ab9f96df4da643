"""Record sinks: every finished record goes to the journal first, then to each further
sink; a sink that raises costs neither the journal write nor the other sinks."""

from __future__ import annotations

import logging

from heliograph.errors import BadRequest
from heliograph.proxy.auth import Principal
from heliograph.proxy.exchange import Exchange
from heliograph.proxy.headers import RequestOptions
from heliograph.records import RECORD_KEYS
from heliograph.sinks import RecordSinks
from heliograph.sinks.journal import JournalSink
from heliograph.store.journal import Journal, claim_segment, decode_line

PRINCIPAL = Principal(key_id="key-1", organization="org-1", admin=False)


class Collecting:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self.closed = False

    def accept(self, record) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True


class Raising:
    def __init__(self) -> None:
        self.closed = False

    def accept(self, record) -> None:
        raise RuntimeError("sink bug")

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("close bug")


def journaled(directory) -> list[dict]:
    """The records in the journal's closed segments, as the writer process reads them."""
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        claimed = claim_segment(path)
        assert claimed is not None, "segment still held by a live journal"
        records += claimed[1]
    return records


def exchange(sinks: RecordSinks) -> Exchange:
    return Exchange(sinks, "/v1/chat/completions", PRINCIPAL, RequestOptions(), 0.0,
                    1_700_000_000.0)


def test_record_goes_to_the_journal_then_every_sink_once(tmp_path):
    journal = Journal(tmp_path)
    first, second = Collecting(), Collecting()
    ex = exchange(RecordSinks(JournalSink(journal), [first, second]))
    ex.log(200)
    ex.log(500)  # closed exactly once
    journal.close()
    (stored,) = journaled(tmp_path)
    assert stored["id"] == ex.id and stored["status"] == 200
    # Every key once (the bodies come last in a journal line: store/journal.py).
    assert sorted(stored) == sorted(RECORD_KEYS) and len(stored) == len(RECORD_KEYS)
    assert first.records == [ex.record] and second.records == [ex.record]


def test_a_raising_sink_loses_neither_the_journal_nor_the_next_sink(tmp_path, caplog):
    journal = Journal(tmp_path)
    after = Collecting()
    ex = exchange(RecordSinks(JournalSink(journal), [Raising(), after]))
    with caplog.at_level(logging.ERROR, logger="heliograph.sinks"):
        ex.log(200)  # does not raise
    journal.close()
    assert [r["id"] for r in journaled(tmp_path)] == [ex.id]
    assert [r["id"] for r in after.records] == [ex.id]
    assert "record sink Raising failed on record " + ex.id in caplog.text
    assert "sink bug" in caplog.text  # the traceback is logged


def test_a_journal_that_cannot_write_keeps_the_record_and_says_so(tmp_path):
    # The answer must still end cleanly (store/journal.py): the record is kept in memory
    # until the disk takes writes again, and the journal reports its failure so new
    # requests are refused (507) before a provider is paid.
    journal = Journal(tmp_path)
    journal.close()  # its file descriptor is gone: every write fails
    after = Collecting()
    ex = exchange(RecordSinks(JournalSink(journal), [after]))
    ex.log(200)
    assert journal.failure is not None
    assert [r["id"] for r in after.records] == [ex.id]


def test_close_closes_every_sink_and_the_journal_last_even_if_one_raises(tmp_path, caplog):
    journal = Journal(tmp_path)
    raising, after = Raising(), Collecting()
    sinks = RecordSinks(JournalSink(journal), [raising, after])
    ex = exchange(sinks)
    ex.log(200)
    with caplog.at_level(logging.ERROR, logger="heliograph.sinks"):
        sinks.close()
    assert raising.closed and after.closed
    assert "closing record sink Raising failed" in caplog.text
    # The journal handed its last segment over: the writer can claim it.
    assert [r["id"] for r in journaled(tmp_path)] == [ex.id]


def test_failed_request_record_reaches_the_sinks(tmp_path):
    journal = Journal(tmp_path)
    seen = Collecting()
    ex = exchange(RecordSinks(JournalSink(journal), [seen]))
    ex.fail(BadRequest("nope"))
    ex.log(400)
    journal.close()
    (stored,) = journaled(tmp_path)
    assert stored["status"] == 400 and stored["error"] == "nope"
    assert seen.records[0]["error"] == "nope"


def test_journal_sink_record_bytes_are_the_journals(tmp_path):
    # The sink adds nothing: one line of JSON per record, as Journal.append writes it.
    journal = Journal(tmp_path)
    ex = exchange(RecordSinks(JournalSink(journal)))
    ex.set_usage({"prompt_tokens": 3, "completion_tokens": 2}, "gpt-4o-mini")
    ex.log(200)
    journal.close()
    (segment,) = tmp_path.glob("*.jsonl")
    (line,) = segment.read_bytes().splitlines()
    assert decode_line(line)["total_tokens"] == 5


def test_new_records_have_every_key_in_order_and_containers_of_their_own():
    from heliograph.records import new_record
    first, second = (new_record(f"r{i}", 1.5, "/v1/chat/completions") for i in range(2))
    assert tuple(first) == RECORD_KEYS and first["id"] == "r0" and second["id"] == "r1"
    assert first["created_at"] == "1970-01-01T00:00:01.500000Z"
    first["properties"]["a"] = "b"
    first["attempts"].append({})
    first["scores"]["s"] = 1
    assert second["properties"] == {} and second["attempts"] == [] and second["scores"] == {}
    assert new_record("r2", 1.5, "/x")["properties"] == {}


def test_on_a_loop_the_other_sinks_run_in_its_next_turn_after_the_journal(tmp_path):
    """What a caller waits for ends with the journal: the other sinks (metrics, access
    log, budgets) run once the task that logged the record has written the answer."""
    import asyncio

    journal = Journal(tmp_path)
    first, second = Collecting(), Collecting()
    ex = exchange(RecordSinks(JournalSink(journal), [first, second]))

    async def logging_task() -> tuple[int, int]:
        ex.log(200)
        seen_in_this_turn = len(first.records) + len(second.records)
        await asyncio.sleep(0)    # the loop's next turn
        return seen_in_this_turn, len(first.records) + len(second.records)

    assert asyncio.run(logging_task()) == (0, 2)
    assert first.records[0] is second.records[0] is ex.record
    journal.close()
    assert [r["id"] for r in journaled(tmp_path)] == [ex.record["id"]]
