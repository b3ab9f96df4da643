"""The writer moving journal segments into each store: a record the store refuses as
data (a number no 64-bit column holds) neither blocks the journal nor takes the other
records down with it; it is stored with the refused values nulled, saying so. Run as the
background host's job, it waits out a database it cannot reach."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest

from heliograph.analytics import open_analytics
from heliograph.analytics.filters import RequestFilter
from heliograph.store.journal import Journal, closed_segments
from heliograph.store.writer import SegmentWriter

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")


def test_a_record_the_store_refuses_is_salvaged_and_the_rest_stored(store, make_record,
                                                                    tmp_path, reader):
    journal = Journal(tmp_path / "journal")
    good = [make_record(f"ok-{i}", model="m", prompt_tokens=10) for i in range(3)]
    poison = make_record("poison", model="m", status=502, error="upstream failed",
                         prompt_tokens=2**63, completion_tokens=5, latency_ms=float("inf"),
                         response={"usage": {"prompt_tokens": 2**64 - 1}})
    for record in (good[0], poison, good[1], good[2]):
        journal.append(record)
    journal.close()

    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    assert list(closed_segments(tmp_path / "journal")) == []  # the segment is done

    for record in good:
        assert reader.get_request("org1", record["id"])["prompt_tokens"] == 10
    stored = reader.get_request("org1", "poison")
    assert stored["status"] == 502 and stored["model"] == "m"
    assert stored["completion_tokens"] == 5
    assert stored["prompt_tokens"] is None and stored["latency_ms"] is None
    assert stored["error"].startswith("upstream failed [some values could not be stored")
    assert stored["response"] == {"usage": {"prompt_tokens": 2**64 - 1}}  # JSON text holds it


def test_a_nul_character_is_stored_replaced_not_blocking_the_journal(store, make_record,
                                                                      tmp_path, reader):
    # PostgreSQL text refuses NUL; a caller can put one in any string it sends.
    journal = Journal(tmp_path / "journal")
    journal.append(make_record("nul", model="gpt-4o-mini\x00", user_id="a\x00b",
                               request={"model": "gpt-4o-mini\x00"}))
    journal.append(make_record("after", model="m"))
    journal.close()
    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    stored = reader.get_request("org1", "nul")
    assert stored["user_id"] in ("a\x00b", "a\ufffdb")  # SQLite keeps it as it came
    assert stored["model"].startswith("gpt-4o-mini")
    assert reader.get_request("org1", "after")["model"] == "m"


def test_a_number_in_a_text_column_is_stored_as_its_text_and_counted_once(
        store, make_record, tmp_path, reader):
    # PostgreSQL COPYs a batch in binary, where a text column takes only a str: the batch
    # fails as data, and its records go again one by one, each in text format as before
    # binary COPY (the server turning 123 into '123'), none of them lost or counted twice.
    journal = Journal(tmp_path / "journal")
    journal.append(make_record("before", model="m", user_id="u1"))
    journal.append(make_record("numeric", model="m", user_id=123, session_id=7))
    journal.append(make_record("after", model="m", user_id="u1"))
    journal.close()
    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    stored = reader.get_request("org1", "numeric")
    assert (stored["user_id"], stored["session_id"]) == ("123", "7")
    assert not stored["error"]   # stored as it came, not salvaged
    assert reader.get_request("org1", "after")["user_id"] == "u1"
    with store.transaction() as cur:
        counted = dict(store.execute(cur, "SELECT user_id, requests FROM rollup_users"
                                          " WHERE organization = 'org1'").fetchall())
    assert counted == {"u1": 2, "123": 1}


def journal_of(directory, make_record, segments: int, per_segment: int) -> list[str]:
    """A journal folder holding `segments` closed segments; the record ids, in order."""
    journal = Journal(directory)
    ids = []
    for s in range(segments):
        for i in range(per_segment):
            ids.append(f"seg{s}-{i}")
            journal.append(make_record(ids[-1], model="m", prompt_tokens=1))
        journal.rotate()
    journal.close()
    assert len(closed_segments(directory)) == segments
    return ids


def counting(store, fail_on_call: int | None = None) -> list[int]:
    """The same store, noting the size of each insert_records call; call number
    `fail_on_call` (from 1) fails as an outage would."""
    sizes: list[int] = []

    class Counting(type(store)):
        def insert_records(self, records):
            sizes.append(len(records))
            if len(sizes) == fail_on_call:
                raise RuntimeError("the database went away")
            super().insert_records(records)

    store.__class__ = Counting
    return sizes


def test_small_segments_share_a_transaction(store, make_record, tmp_path, reader):
    ids = journal_of(tmp_path / "journal", make_record, segments=5, per_segment=3)
    sizes = counting(store)
    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    assert sizes == [15]   # one transaction for the five segments
    assert closed_segments(tmp_path / "journal") == []
    assert all(reader.get_request("org1", rid) for rid in ids)


def test_a_failed_batch_keeps_its_segments_and_nothing_counts_twice(store, make_record,
                                                                     tmp_path, reader):
    ids = journal_of(tmp_path / "journal", make_record, segments=3, per_segment=4)
    store.writer_batch = 6   # segment 0 and half of 1, then the rest of 1 and 2
    sizes = counting(store, fail_on_call=2)
    assert SegmentWriter(tmp_path / "journal", store).drain() is False
    assert sizes == [6, 6]
    # The first batch is in; segment 1 (half in) and 2 wait, segment 0 is gone.
    assert len(closed_segments(tmp_path / "journal")) == 2
    assert all(reader.get_request("org1", rid) for rid in ids[:6])
    assert not any(reader.get_request("org1", rid) for rid in ids[6:])

    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    assert closed_segments(tmp_path / "journal") == []
    assert all(reader.get_request("org1", rid) for rid in ids)
    totals = reader.metrics("org1", RequestFilter(), group_by="model")["total"]
    assert totals["requests"] == len(ids)   # the replayed half segment counted once


def test_the_writer_job_waits_out_a_database_that_is_not_there_yet(make_record, tmp_path):
    """The background host's writer, started while its database cannot be reached (here:
    not created yet), keeps the journal and stores it once the database is there."""
    if not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set")
    name = "heliograph_late_" + uuid.uuid4().hex[:10]
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    journal = Journal(tmp_path / "journal")
    for i in range(3):
        journal.append(make_record(f"late-{i}", model="m"))
    journal.close()
    host = subprocess.Popen([sys.executable, "-m", "heliograph.background",
                             "--journal", str(tmp_path / "journal"), "--database-url", url])
    try:
        time.sleep(2)  # a few failed attempts
        assert host.poll() is None
        assert len(closed_segments(tmp_path / "journal")) == 1  # kept, not dropped
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        deadline = time.monotonic() + 20
        while closed_segments(tmp_path / "journal") and time.monotonic() < deadline:
            time.sleep(0.1)
        reader = open_analytics(url)
        try:
            assert [reader.get_request("org1", f"late-{i}")["model"] for i in range(3)] == \
                ["m"] * 3
        finally:
            reader.close()
    finally:
        host.send_signal(signal.SIGTERM)
        host.wait(15)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_growing_backlog_is_a_warning_once_a_minute(store, make_record, tmp_path, caplog):
    journal = Journal(tmp_path / "journal")
    for i in range(50):
        journal.append(make_record(f"backlog-{i}", request={"text": "x" * 200}))
    journal.close()
    quiet = SegmentWriter(tmp_path / "journal", store, warn_bytes=10**9)
    loud = SegmentWriter(tmp_path / "journal", store, warn_bytes=1000)
    with caplog.at_level("WARNING", logger="heliograph.writer"):
        loud._check_backlog(closed_segments(tmp_path / "journal"))
        loud._check_backlog(closed_segments(tmp_path / "journal"))  # not again so soon
        quiet._check_backlog(closed_segments(tmp_path / "journal"))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "falling behind" in warnings[0], warnings
    assert loud.drain() is True
    caplog.clear()
    with caplog.at_level("WARNING", logger="heliograph.writer"):
        SegmentWriter(tmp_path / "journal", store, warn_bytes=1000).drain()  # drained: none
    assert caplog.records == []


def test_postgres_has_two_batches_in_flight_and_stores_each_record_once(
        store, store_kind, make_record, tmp_path, reader):
    """The two batches really are in their transactions at the same time (each waits at
    a barrier for the other before inserting: a writer doing one at a time fails it),
    both adding to the same rollup rows (one hour, one model) without a deadlock, and
    every record is stored and counted once."""
    if store_kind != "postgres":
        pytest.skip("SQLite takes one batch at a time (one write lock)")
    assert store.writer_pipeline == 2
    ids = journal_of(tmp_path / "journal", make_record, segments=8, per_segment=5)
    store.writer_batch = 5
    both_in = threading.Barrier(2, timeout=10)
    calls: list[int] = []

    class Overlapping(type(store)):
        def insert_records(self, records):
            calls.append(len(records))
            if len(calls) <= 2:
                both_in.wait()
            super().insert_records(records)

    store.__class__ = Overlapping
    writer = SegmentWriter(tmp_path / "journal", store)
    try:
        assert writer.drain() is True
    finally:
        writer.close()
    assert calls == [5] * 8
    assert closed_segments(tmp_path / "journal") == []
    assert all(reader.get_request("org1", rid) for rid in ids)
    totals = reader.metrics("org1", RequestFilter(), group_by="model")["total"]
    assert totals["requests"] == len(ids)
    assert totals["prompt_tokens"] == len(ids)


def test_postgres_keeps_a_committed_batch_whose_predecessor_failed(
        store, store_kind, make_record, tmp_path, reader):
    """Batches end in any order, segments go in the journal's: the second batch commits
    while the first then fails, so both segments stay (the first's records are not in),
    and the next pass stores the first and skips the second's records as replays."""
    if store_kind != "postgres":
        pytest.skip("SQLite takes one batch at a time (one write lock)")
    ids = journal_of(tmp_path / "journal", make_record, segments=2, per_segment=5)
    store.writer_batch = 5
    second_in = threading.Event()

    class FirstFailsLate(type(store)):
        def insert_records(self, records):
            if records[0]["id"] == "seg0-0" and not second_in.is_set():
                assert second_in.wait(10)   # the second batch committed meanwhile
                raise RuntimeError("the database went away")
            super().insert_records(records)
            second_in.set()

    store.__class__ = FirstFailsLate
    writer = SegmentWriter(tmp_path / "journal", store)
    try:
        assert writer.drain() is False
        assert len(closed_segments(tmp_path / "journal")) == 2   # neither deleted
        assert not any(reader.get_request("org1", rid) for rid in ids[:5])
        assert all(reader.get_request("org1", rid) for rid in ids[5:])

        assert writer.drain() is True
    finally:
        writer.close()
    assert closed_segments(tmp_path / "journal") == []
    assert all(reader.get_request("org1", rid) for rid in ids)
    totals = reader.metrics("org1", RequestFilter(), group_by="model")["total"]
    assert totals["requests"] == len(ids)   # the second segment's replay counted once


def test_a_transaction_takes_at_most_the_stores_batch_bytes_of_the_journal(
        store, make_record, tmp_path, reader):
    # Several segments, each ~40 KB of records: with a bound of 100 KB a drain inserts
    # them in transactions of at most three segments, not all at once (the writer's
    # memory and its hold on SQLite's write lock stay bounded), and stores them all.
    for seg in range(6):
        journal = Journal(tmp_path / "journal")
        for i in range(10):
            journal.append(make_record(f"s{seg}-{i}", model="m", request={"pad": "x" * 4000}))
        journal.close()
    store.writer_batch_bytes = 100_000
    sizes = []
    insert = store.insert_records

    def counted(records):
        sizes.append(len(records))
        return insert(records)

    store.insert_records = counted
    assert SegmentWriter(tmp_path / "journal", store).drain() is True
    assert sum(sizes) == 60 and len(sizes) >= 2 and max(sizes) <= 30, sizes
    assert all(reader.get_request("org1", f"s{seg}-{i}") is not None
               for seg in range(6) for i in range(10))
