"""The journal on a real, nearly full file system (a small tmpfs): a record larger than
the space left is written short; the torn part is cut off instead of gluing the next
record to it, the journal reports its failure instead of raising, and freeing space
writes the records it kept in memory."""

import subprocess

import orjson
import pytest

from heliograph.store.journal import Journal, claim_segment, closed_segments


@pytest.fixture
def tiny_fs(tmp_path):
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_short_write_is_cut_off_and_the_record_kept_until_space_returns(tiny_fs):
    journal = Journal(tiny_fs / "journal", min_free_bytes=0)
    assert journal.append({"id": "first", "n": 1}) is True
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 200 * 1024))  # ~200 KiB left, less used
    big = {"id": "big", "text": "x" * (600 * 1024)}  # longer than the space left
    assert journal.append(big) is False  # written short, then ENOSPC: not raised
    assert journal.failure and "ENOSPC" in journal.failure
    assert journal.available() is False
    assert journal.append({"id": "while-full"}) is False  # kept in memory

    filler.unlink()
    assert journal.check() is None and journal.available() is True
    assert journal.append({"id": "after"}) is True
    journal.close()

    records = []
    for path in closed_segments(tiny_fs / "journal"):
        fd, found = claim_segment(path)
        records += found
        raw = path.read_bytes()
        # Every line whole: the torn start of `big` was cut off before it was rewritten.
        assert all(orjson.loads(line) for line in raw.split(b"\n") if line)
    assert [r["id"] for r in records] == ["first", "big", "while-full", "after"]
    assert records[1] == big


def test_low_free_space_fails_the_journal_before_any_write(tiny_fs):
    journal = Journal(tiny_fs / "journal", min_free_bytes=512 * 1024)
    assert journal.check() is None
    (tiny_fs / "filler").write_bytes(b"\0" * (700 * 1024))
    assert "nearly full" in journal.check()
    assert journal.available() is False
    (tiny_fs / "filler").unlink()
    journal.rotate()  # the rotation timer notices the space is back
    assert journal.failure is None
    journal.close()
