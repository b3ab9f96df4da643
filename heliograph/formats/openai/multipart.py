"""Reading a multipart/form-data upload as it streams past (audio transcriptions, image
edits, file uploads), without holding it: the form's small fields (model, purpose,
prompt…) are kept for routing and the log, each file part only as its name, file name,
media type and size. The bytes themselves are relayed untouched by the caller of `feed`.

The parsing is python-multipart's (`MultipartParser`, callback-driven and incremental).
"""

from __future__ import annotations

import re
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from heliograph.errors import BadRequest

# A text field longer than this is logged cut short (a prompt can be long; a file is not
# a field). Routing only reads `model`, which is never near this.
MAX_FIELD_CHARS = 10_000


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a multipart/form-data content type, else None."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    return boundary or None


class FormSniffer:
    """Fed the upload's chunks in order; `fields` holds the text fields seen so far,
    `files` the file parts, `done_fields` the names of the fields fully read, and
    `summary` what the log keeps of the request (its fields, its files described),
    filled in as the upload streams past."""

    def __init__(self, boundary: bytes) -> None:
        self.fields: dict[str, str] = {}
        self.files: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {"files": self.files}
        self.done_fields: set[str] = set()
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._part: dict[str, Any] = {}
        self._text: list[bytes] = []
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        })

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except Exception as exc:  # python-multipart's own errors: the form is malformed
            raise BadRequest(f"the multipart/form-data body is malformed: {exc}",
                             code="invalid_multipart") from None

    # -- python-multipart callbacks --------------------------------------------------

    def _begin(self) -> None:
        self._headers, self._part, self._text = {}, {}, []

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._part = {"name": name, "bytes": 0}
        if filename is not None:
            self._part["filename"] = filename.decode("utf-8", "replace")
            self._part["content_type"] = self._headers.get(
                b"content-type", b"application/octet-stream").decode("latin-1")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._part["bytes"] += end - start
        if "filename" not in self._part and self._part["bytes"] <= MAX_FIELD_CHARS * 4:
            self._text.append(data[start:end])

    def _end(self) -> None:
        part = self._part
        if "filename" in part:
            self.files.append(part)
            return
        value = b"".join(self._text).decode("utf-8", "replace")[:MAX_FIELD_CHARS]
        self.fields[part["name"]] = value
        if part["name"] != "files":
            self.summary[part["name"]] = value
        self.done_fields.add(part["name"])


def with_field_value(prefix: bytes, name: str, old: str, new: str) -> bytes | None:
    """`prefix` (the start of a form, which holds the whole `name` field) with that
    field's value replaced; None when the field is not found as written."""
    pattern = re.compile(
        rb'(name="' + re.escape(name.encode()) + rb'"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)'
        + re.escape(old.encode()) + rb"(\r\n--)")
    replaced, count = pattern.subn(lambda m: m.group(1) + new.encode() + m.group(2), prefix,
                                   count=1)
    return replaced if count else None
