"""The journal's backlog during a run: is the writer keeping up with the gateway?

Every worker appends its records to journal segments (a new one every 0.2 s when busy) and
the background host's writer inserts them and deletes each segment once its records are
committed. So the bytes of segments on disk are the records not yet in the database (plus
the segment each worker has open): flat while the writer keeps up, growing by the gap
between the two rates when it does not. Sampled from a thread every `every_s` seconds.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

SEGMENT_SUFFIX = ".jsonl"   # heliograph.store.journal.SEGMENT_SUFFIX


def journal_bytes(directory: Path) -> int:
    total = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.endswith(SEGMENT_SUFFIX):
            try:
                total += entry.stat().st_size
            except OSError:   # inserted and deleted meanwhile
                pass
    return total


class BacklogSampler:
    def __init__(self, directory: Path, every_s: float = 0.25) -> None:
        self.directory = directory
        self.every_s = every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((round(time.monotonic() - self._started, 2),
                                 journal_bytes(self.directory)))
            self._stop.wait(self.every_s)

    def stop(self) -> dict:
        """Stop sampling; the backlog's peak, its mean over the run's second half and at
        the end (KB), and how long the writer took to empty it after the load stopped."""
        self._stop.set()
        self._thread.join()
        ended = time.monotonic()
        drained_s = None
        while time.monotonic() - ended < 120:
            if journal_bytes(self.directory) == 0:
                drained_s = round(time.monotonic() - ended, 2)
                break
            time.sleep(0.05)
        sizes = [size for _t, size in self.samples] or [0]
        late = sizes[len(sizes) // 2:]
        return {"backlog_max_kb": round(max(sizes) / 1024, 1),
                "backlog_second_half_mean_kb": round(sum(late) / len(late) / 1024, 1),
                "backlog_end_kb": round(sizes[-1] / 1024, 1),
                "backlog_drained_s": drained_s,
                "backlog_samples": self.samples}
