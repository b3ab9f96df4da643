"""Record ids: version-7 UUIDs (time-ordered, RFC 9562), never repeated, also not by a
forked worker."""

import os
import random
import time
import uuid

from heliograph.demo.history import _uuid7
from heliograph.proxy.exchange import fast_uuid7


def _millis(text: str) -> int:
    return int(uuid.UUID(text).hex[:12], 16)


def test_ids_are_version_7_uuids_and_unique():
    before = int(time.time() * 1000)
    ids = [fast_uuid7() for _ in range(10_000)]  # crosses many refills of the random page
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before <= _millis(text) <= after
    # Every variant digit turns up (its two low bits are random), and the digits after
    # the version are not stuck.
    assert {text[19] for text in ids} == set("89ab")
    assert len({text[15:18] for text in ids}) > 1000


def test_ids_follow_the_requests_time_so_indexes_grow_at_their_end():
    wall = 1_796_000_000.1235   # mid-millisecond: float steps never cross one twice
    ids = [fast_uuid7(wall + i * 0.001) for i in range(1000)]
    assert ids == sorted(ids)   # text order is time order, a millisecond apart
    assert [_millis(x) for x in ids] == list(range(1_796_000_000_123, 1_796_000_001_123))


def test_the_demo_makes_the_same_kind_of_ids_and_repeats_them_by_seed():
    at = 1_796_000_000.5
    first = [_uuid7(random.Random(3), at + i) for i in range(3)]
    assert first == [_uuid7(random.Random(3), at + i) for i in range(3)]
    for text in first:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert _millis(first[0]) == 1_796_000_000_500
    assert first == sorted(first)


def test_a_forked_child_does_not_repeat_its_parents_ids():
    fast_uuid7()  # the parent now holds unused random digits that a child would inherit
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave without pytest's cleanup
        os.close(read_end)
        os.write(write_end, " ".join(fast_uuid7() for _ in range(5)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = pipe.read().split()
    os.waitpid(pid, 0)
    parent_ids = [fast_uuid7() for _ in range(5)]
    assert len(child_ids) == 5 and not set(child_ids) & set(parent_ids)
