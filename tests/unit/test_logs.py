"""logs.py's formatters: JSON lines carry the access fields, and key-shaped text is
masked in both formats (an upstream error may echo part of a key)."""

from __future__ import annotations

import json
import logging

from heliograph.logs import JsonFormatter, TextFormatter, redact


def make(message: str, *args, fields: dict | None = None) -> logging.LogRecord:
    record = logging.LogRecord("heliograph.upstream", logging.WARNING, __file__, 1, message,
                               args, None)
    if fields is not None:
        record.fields = fields
    return record


def test_redact_masks_key_shaped_text():
    text = ("Incorrect API key provided: sk-proj-abc123DEF456. Bearer eyJhbGciOi.x-y "
            "AIzaSyA1b2c3d4e5 sk-ant-api03-ZZZZZZZZ")
    masked = redact(text)
    for secret in ("sk-proj-abc123DEF456", "eyJhbGciOi", "AIzaSyA1b2c3d4e5",
                   "sk-ant-api03-ZZZZZZZZ"):
        assert secret not in masked
    assert masked.startswith("Incorrect API key provided: [redacted]")
    assert redact("model gpt-4o-mini took 12 ms") == "model gpt-4o-mini took 12 ms"


def test_json_line_has_fields_and_no_secret():
    line = JsonFormatter().format(make("upstream said %s", "bad key sk-secret-0123456789",
                                       fields={"record_id": "r1", "status": 502}))
    parsed = json.loads(line)
    assert parsed["level"] == "warning" and parsed["logger"] == "heliograph.upstream"
    assert parsed["record_id"] == "r1" and parsed["status"] == 502
    assert "sk-secret-0123456789" not in line


def test_text_line_is_masked():
    line = TextFormatter().format(make("key sk-secret-0123456789 refused"))
    assert " WARNING heliograph.upstream: key [redacted] refused" in line
