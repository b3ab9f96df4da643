"""The journal as a record sink: each record appended to the worker's segment file (one
write, no waiting); the writer process inserts it into the database (store/journal.py)."""

from __future__ import annotations

from heliograph.records import Record
from heliograph.store.journal import Journal


class JournalSink:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def accept(self, record: Record) -> None:
        self.journal.append(record)

    def close(self) -> None:
        """Hand the last segment to the writer."""
        self.journal.close()
