"""A SQLite store's new connection: a new file gets incremental auto-vacuum (retention
hands freed pages back), and a file in use is opened without waiting for the journal
writer's transaction (setting auto_vacuum takes the write lock)."""

import sqlite3
import threading

from heliograph.store.sqlite import SQLiteStore


def test_a_new_file_gets_incremental_auto_vacuum(tmp_path):
    store = SQLiteStore(f"sqlite:///{tmp_path / 'new.db'}")
    store.migrate()
    try:
        conn = sqlite3.connect(tmp_path / "new.db")
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2   # INCREMENTAL
        conn.close()
    finally:
        store.close()


def test_a_connection_to_a_file_in_use_does_not_wait_for_a_writers_transaction(tmp_path):
    path = tmp_path / "busy.db"
    first = SQLiteStore(f"sqlite:///{path}")
    first.migrate()
    first.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")   # as the journal writer holds it during a batch
    writer.execute("DELETE FROM api_keys")
    # A short busy timeout: a connection that needed the write lock to open fails
    # ("database is locked") instead of waiting the default 30 s.
    store = SQLiteStore(f"sqlite:///{path}", busy_timeout_s=0.5)
    counted: list[int] = []
    failed: list[BaseException] = []

    def read_on_a_new_thread() -> None:   # each thread opens its own connection
        try:
            counted.append(store.count_keys())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    try:
        thread = threading.Thread(target=read_on_a_new_thread)
        thread.start()
        thread.join(10)
        assert not failed, failed
        assert counted == [0]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()
