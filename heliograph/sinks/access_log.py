"""The access log: one line per proxied request, from its finished record — method, path,
status, model, provider, latency and record id, which uvicorn's own access log (off) does
not know. Failed upstream attempts (5xx, connection errors, timeouts) are warnings of
their own, so a flaky provider shows even when a fallback saved the request.

Access lines skip the `logging` machinery: through a handler they cost ~25 µs a request
(a LogRecord, formatTime, a locked write and flush each), a sixth of a cache hit's CPU.
Here a line is formatted from the record in the same shape the `heliograph` handler
writes (logs.py) and buffered; the buffer goes out in one write a tenth of a second later
(or before any warning, so lines stay in order). The `heliograph.access` logger's level
still decides whether lines are written (`--log-level warning` silences them).

Nothing here reads headers or bodies: a caller's key cannot reach the log through it (and
logs.redact masks anything key-shaped in error texts the provider wrote).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import orjson

from heliograph.records import Record

ACCESS_NAME = "heliograph.access"
access = logging.getLogger(ACCESS_NAME)
upstream = logging.getLogger("heliograph.upstream")

# Every path that produces a record is a POST (the proxy's routes, app.PROXY_ROUTES).
METHOD = "POST"
FLUSH_AFTER_S = 0.1
# A line's milliseconds, "000" to "999": a tuple index costs a tenth of formatting them
# with :03d for every line.
_MILLIS = tuple(f"{ms:03d}" for ms in range(1000))


class AccessLogSink:
    def __init__(self, enabled: bool = True, fmt: str = "text") -> None:
        self.enabled = enabled
        self.json = fmt == "json"
        self._lines: list[str] = []
        self._flush_pending = False
        self._second = -1
        self._stamp = ""

    def accept(self, record: Record) -> None:
        for attempt in record["attempts"]:
            status = attempt.get("status") or 0
            # 5xx from the provider, or ours for an unreachable one (502/504).
            if status >= 500 and upstream.isEnabledFor(logging.WARNING):
                self.flush()
                upstream.warning(
                    "upstream %s failed for %s: %s %s (record %s)", attempt.get("provider"),
                    attempt.get("model"), status, attempt.get("error") or "", record["id"],
                    extra={"fields": {"record_id": record["id"], "status": status,
                                      "provider": attempt.get("provider"),
                                      "model": attempt.get("model")}})
        if self.enabled and access.isEnabledFor(logging.INFO):
            self._lines.append(self._json_line(record) if self.json else self._text_line(record))
            if not self._flush_pending:
                self._schedule_flush()

    def _text_line(self, record: Record) -> str:
        """The text line, built in one f-string (every request pays for it): logs.py's
        `time INFO heliograph.access: message`, the time's seconds formatted once each."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._set_second(second, json=False)
        return (f"{self._stamp},{_MILLIS[int((now - second) * 1000)]} INFO {ACCESS_NAME}: "
                f"{_message(record)}\n")

    def _json_line(self, record: Record) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._set_second(second, json=True)
        fields: dict[str, Any] = {
            "time": f"{self._stamp}.{_MILLIS[int((now - second) * 1000)]}Z", "level": "info",
            "logger": ACCESS_NAME, "message": _message(record), "method": METHOD,
            "path": record["path"], "status": record["status"], "model": record["model"],
            "provider": record["provider"], "latency_ms": record["latency_ms"],
            "record_id": record["id"]}
        return orjson.dumps(fields).decode() + "\n"

    def _set_second(self, second: int, json: bool) -> None:
        """logs.py's timestamps (UTC): the seconds formatted once per second."""
        self._second = second
        self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S" if json else "%Y-%m-%d %H:%M:%S",
                                    time.gmtime(second))

    def _schedule_flush(self) -> None:
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on a loop (a script, a test): write at once
            self.flush()
            return
        self._flush_pending = True
        loop.call_later(FLUSH_AFTER_S, self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        if not self._lines:
            return
        data = "".join(self._lines)
        self._lines.clear()
        try:
            sys.stderr.write(data)
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr gone (closed pipe): nothing to tell
            pass

    def close(self) -> None:
        self.flush()


def _message(record: Record) -> str:
    """The access line's message, the same in the text and the JSON log."""
    return (f"{METHOD} {record['path']} {record['status']} "
            f"model={record['model'] or '-'} provider={record['provider'] or '-'} "
            f"{record['latency_ms'] or 0.0:.1f}ms id={record['id']}")
