"""Where finished log records go: a list of sinks, the journal first.

`Exchange.log` hands every closed record to `RecordSinks.accept`, once, before the
answer's last byte is sent. The journal sink comes first and alone decides durability:
its failure is the request's failure, exactly as when the journal was called directly.
Every further sink (metrics, budgets, webhooks, tracing) is isolated: if it raises, the
error is logged and the other sinks and the request carry on. On an event loop they run
in its next turn, after the task that logged the record has written the answer's last
bytes: they are not what a caller waits for (~700 bytecodes a request, ~6% of a
streamed call's Python: bench/README.md, session 17). A request this worker reads
later still finds them done: its bytes are handled in a later turn.

Adding a sink: one module here with a class satisfying `RecordSink`, and one line in
`Gateway.build` (heliograph/app.py) putting an instance in the list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from heliograph.records import Record

log = logging.getLogger("heliograph.sinks")


class RecordSink(Protocol):
    def accept(self, record: Record) -> None:
        """Take one finished record. Runs on the event loop for every request: it must
        return at once (queue anything slow for a task or thread of its own) and treat
        the record as read-only (the pipeline still reads it after the answer)."""

    def close(self) -> None:
        """At shutdown, after the last record: flush and release what the sink holds."""


class RecordSinks:
    """The journal, then the other sinks in the order given."""

    def __init__(self, journal: RecordSink, others: Sequence[RecordSink] = ()) -> None:
        self.journal = journal
        self.others = tuple(others)

    def accept(self, record: Record) -> None:
        # Not guarded: a record the journal did not take must not look logged.
        self.journal.accept(record)
        if not self.others:
            return
        try:
            asyncio.get_running_loop().call_soon(self._others, record)
        except RuntimeError:   # no loop: a command or a test logging a record
            self._others(record)

    def _others(self, record: Record) -> None:
        for sink in self.others:
            try:
                sink.accept(record)
            except Exception:  # noqa: BLE001 - one sink's bug must not cost the request
                log.exception("record sink %s failed on record %s",
                              type(sink).__name__, record["id"])

    def close(self) -> None:
        """Close the other sinks, then the journal (always, whatever they raise)."""
        for sink in self.others:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - the journal must still be handed over
                log.exception("closing record sink %s failed", type(sink).__name__)
        self.journal.close()
