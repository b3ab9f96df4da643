"""The journal's next segment is created ahead of time off the event loop
(Journal.prepare_spare), so a rotation only swaps descriptors. The spare is locked like
an open segment, so no writer claims it; the rotation switches to exactly that file; a
spare never used is removed at close; and a spare made on another thread while rotations
run is never lost or leaked."""

import threading

from heliograph.store.journal import Journal, claim_segment, closed_segments


def rec(i: int) -> dict:
    return {"id": f"r{i}", "created_at": "2024-03-04T10:00:00.000000Z",
            "organization": "org1"}


def test_rotation_switches_to_the_spare_made_ahead(tmp_path):
    journal = Journal(tmp_path)
    journal.append(rec(1))
    journal.prepare_spare()
    first = journal._path
    spare_fd, spare = journal._spare
    assert set(closed_segments(tmp_path)) == {first, spare}
    assert claim_segment(spare) is None  # locked by us: no writer takes it

    assert journal.rotate() is True
    assert journal._path == spare and journal._fd == spare_fd and journal._spare is None
    fd, records = claim_segment(first)  # the closed one is the writer's now
    assert [r["id"] for r in records] == ["r1"]

    journal.append(rec(2))
    assert journal.rotate() is True  # no spare ready: made on the spot, as before
    assert journal._path not in (first, spare)
    journal.prepare_spare()
    unused = journal._spare[1]
    journal.close()  # the current segment is empty: removed, and so is the spare
    remaining = set(closed_segments(tmp_path))
    assert unused not in remaining and journal._path not in remaining
    assert remaining == {first, spare}


def test_spares_made_on_another_thread_during_rotations_lose_nothing(tmp_path):
    journal = Journal(tmp_path)
    stop = threading.Event()

    def prepare():
        while not stop.is_set():
            journal.prepare_spare()

    helper = threading.Thread(target=prepare)
    helper.start()
    try:
        for i in range(2000):
            journal.append(rec(i))
            if i % 7 == 0:
                journal.rotate()
    finally:
        stop.set()
        helper.join()
    journal.close()
    ids = []
    for path in closed_segments(tmp_path):
        claimed = claim_segment(path)
        assert claimed is not None  # nothing left locked: no spare leaked open
        ids += [r["id"] for r in claimed[1]]
    assert sorted(ids) == sorted(f"r{i}" for i in range(2000))
    assert not list(tmp_path.glob("*.opening"))
