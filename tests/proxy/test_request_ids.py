"""Record ids: random version-4 UUIDs, never repeated, also not by a forked worker."""

import os
import uuid

from heliograph.proxy.exchange import fast_uuid4


def test_ids_are_version_4_uuids_and_unique():
    ids = [fast_uuid4() for _ in range(10_000)]  # crosses many refills of the byte page
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_forked_child_does_not_repeat_its_parents_ids():
    fast_uuid4()  # the parent now holds unused random bytes that a child would inherit
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave without pytest's cleanup
        os.close(read_end)
        os.write(write_end, " ".join(fast_uuid4() for _ in range(5)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = pipe.read().split()
    os.waitpid(pid, 0)
    parent_ids = [fast_uuid4() for _ in range(5)]
    assert len(child_ids) == 5 and not set(child_ids) & set(parent_ids)
