"""The server's own log output: level, text or JSON lines, on stderr.

uvicorn configures only its own loggers; everything under `heliograph` (the access log,
upstream and journal warnings, tracebacks) goes through the one handler set here, in
each worker process, from [logging] (or `serve --log-level/--access-log`).
"""

from __future__ import annotations

import logging
import re
import sys
import time

import orjson

HANDLER_NAME = "heliograph"
# What a credential looks like in an error text (OpenAI echoes part of a wrong key):
# provider and gateway keys (sk-..., sk-ant-..., sk-hg-...), bearer tokens, Google keys.
_SECRET = re.compile(r"(?i)\b(?:sk-|sk_|key-|AIza|bearer\s+)[A-Za-z0-9._\-]{6,}")


def redact(text: str) -> str:
    """`text` with anything shaped like a key replaced: log lines must never hold one."""
    return _SECRET.sub("[redacted]", text)


class TextFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # UTC, like created_at

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # Warnings and errors quote texts from providers and exceptions; access lines
        # (INFO) are built from record fields only, and skip the regex on the hot path.
        return redact(line) if record.levelno >= logging.WARNING else line


class JsonFormatter(logging.Formatter):
    """One JSON object a line; an access line's fields (`extra={"fields": ...}`) are
    top-level keys beside time, level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        if record.levelno >= logging.WARNING:
            line["message"] = redact(line["message"])
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()


def configure(level: str = "info", fmt: str = "text") -> None:
    """Route the `heliograph` loggers to stderr at `level`, formatted as `fmt` ("text" or
    "json"). Idempotent: building a second gateway in a process replaces the handler."""
    root = logging.getLogger("heliograph")
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # No format here shows them; each costs a lookup on every log record (every request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
