"""The journal writer's SQLite store checkpoints its write-ahead log from a thread of its
own (store/_sqlite_checkpoint.py): the committed pages reach the database file without the
writer copying them, and the log starts over while the writer commits back to back."""

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

from heliograph.store import open_store
from heliograph.store.sqlite import SQLiteStore


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "heliograph-checkpoint"]


def _rows_in_the_file_alone(path, tmp_path) -> int:
    """Records in the database file without its write-ahead log: what checkpoints copied."""
    copy = tmp_path / "file-alone.db"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    finally:
        conn.close()


def test_the_writers_commits_reach_the_file_through_a_thread_of_its_own(
        make_record, tmp_path):
    path = tmp_path / "heliograph.db"
    writer = open_store(f"sqlite:///{path}", writer=True)
    with writer.transaction() as cur:   # the writer's own connection never checkpoints
        assert cur.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    writer.close()
    store = SQLiteStore(f"sqlite:///{path}", writer=True)
    # A checkpoint after each commit (in production after 64 MB of log).
    store._checkpointer.every_bytes = 1
    try:
        store.insert_records([make_record(f"r{i}", request={"i": i}) for i in range(50)])
        # The test's thread committed and returned: the checkpoint thread copies the
        # pages into the file (a connection left to itself would at 64 MB of log).
        _wait_for(lambda: _rows_in_the_file_alone(path, tmp_path) == 50)
        assert _checkpoint_threads()
    finally:
        store.close()
    assert not _checkpoint_threads()   # close() ends it


def test_the_log_starts_over_while_the_writer_commits_back_to_back(tmp_path):
    path = tmp_path / "heliograph.db"
    store = SQLiteStore(f"sqlite:///{path}", writer=True)
    store._checkpointer.every_bytes = 20 * 4096   # 64 MB in production
    store.migrate()
    try:
        with store.transaction(write=True) as cur:
            cur.execute("CREATE TABLE filler (data BLOB)")
        for _ in range(300):   # ~5 pages a commit, one commit right after the other
            with store.transaction(write=True) as cur:
                cur.executemany("INSERT INTO filler VALUES (?)",
                                [(os.urandom(3000),) for _ in range(5)])
        # Without the wait for a checkpoint past the limit, each transaction begins while
        # one runs and the log never starts over: ~1,500 pages, 6 MB.
        assert os.path.getsize(f"{path}-wal") < 200 * 4096
        with store.transaction() as cur:
            assert cur.execute("SELECT COUNT(*) FROM filler").fetchone()[0] == 1500
    finally:
        store.close()


def _niceness_of(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def test_checkpoints_run_at_the_niceness_of_the_thread_that_opened_the_store(
        make_record, tmp_path):
    """The journal writer opens its store on a thread at the host's priority and commits
    small backlogs from a thread at nice 19: a checkpoint thread started by that thread's
    first commit would run at 19, and under load hold up the passes at full priority
    (they wait for it once the log holds 128 MB)."""
    path = tmp_path / "heliograph.db"
    store = SQLiteStore(f"sqlite:///{path}", writer=True)
    opener = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    store.migrate()   # commits, below the log size that asks for a checkpoint
    store._checkpointer.every_bytes = 1   # from now on a checkpoint after each commit

    def commit_at_nice_19() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        store.insert_records([make_record(f"r{i}", request={"i": i}) for i in range(20)])

    committer = threading.Thread(target=commit_at_nice_19)
    try:
        committer.start()
        committer.join()
        _wait_for(lambda: _rows_in_the_file_alone(path, tmp_path) == 20)
        [checkpoints] = _checkpoint_threads()
        assert opener < 19 and _niceness_of(checkpoints) == opener
    finally:
        store.close()


def _truncate_from_another_process(path) -> tuple[int, int, int]:
    """wal_checkpoint(TRUNCATE) run by another process: (busy, log frames, copied)."""
    script = ("import sqlite3, sys\n"
              "conn = sqlite3.connect(sys.argv[1], timeout=0)\n"
              "print(*conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone())\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                         capture_output=True, text=True).stdout
    busy, frames, copied = (int(n) for n in out.split())
    return busy, frames, copied


def test_measuring_the_log_keeps_this_processs_locks_on_it(make_record, tmp_path):
    # SQLite's write-ahead log is guarded by POSIX locks on the -shm file, and closing
    # any descriptor of a file drops every such lock the process holds on it. The
    # checkpoint thread measures the log at each commit; had it read the wal-index with
    # open()/close() (tried in session 13), another process could start the log over
    # under a reader of this one, which then reads pages overwritten since: "database disk
    # image is malformed".
    path = tmp_path / "heliograph.db"
    open_store(f"sqlite:///{path}", writer=True).close()   # the schema
    store = SQLiteStore(f"sqlite:///{path}", writer=True)
    store._checkpointer.every_bytes = 1
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        store.insert_records([make_record(f"r{i}", request={"i": i}) for i in range(20)])
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 20
        store.insert_records([make_record(f"s{i}", request={"i": i}) for i in range(20)])
        assert store._checkpointer._log_bytes() > 0
        # The reader's snapshot still needs the log: it must not start over.
        assert _truncate_from_another_process(path)[0] == 1
        assert reader.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 20
        reader.execute("COMMIT")
        assert _truncate_from_another_process(path)[0] == 0
    finally:
        reader.close()
        store.close()
