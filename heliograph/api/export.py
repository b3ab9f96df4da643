"""GET /api/v1/requests/export?format=jsonl|csv: every record the filters select (the
same filters as /api/v1/requests), bodies included, newest first, streamed.

Memory stays constant whatever the count: the records are read a page at a time by keyset
(each page a short query on the analytics threads, resuming after the last record sent)
and each page is sent before the next is read. Pages rather than one long server-side
cursor, so an export of a million records holds no connection, transaction or snapshot
for minutes, and other reports interleave with it. Errors found before the first byte
(bad filter, bad format, wrong key) are the usual JSON errors; a failure midway ends the
stream early (the status is sent by then), which a client sees as a short download.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from heliograph import deep_json
from heliograph.analytics.filters import parse_filter
from heliograph.api._common import query_value, refuse_nul
from heliograph.asgi import Request, client_gone, send_error
from heliograph.errors import BadRequest, GatewayError
from heliograph.records import RECORD_KEYS
from heliograph.types import Send

log = logging.getLogger("heliograph.api")

EXPORT_PARAMETERS = ("format",)
PAGE = 500  # records per query; a page also ends early past the analytics' body budget
_CONTENT_TYPES = {"jsonl": b"application/x-ndjson", "csv": b"text/csv; charset=utf-8"}


def jsonl_chunk(records: list[dict]) -> bytes:
    return b"".join(deep_json.dumps(rec) + b"\n" for rec in records)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return deep_json.dumps(value).decode()
    return value


def csv_chunk(records: list[dict], header: bool) -> bytes:
    """CSV rows (RFC 4180) with a column per record key; objects and lists as JSON."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(RECORD_KEYS)
    for rec in records:
        writer.writerow([_cell(rec.get(key)) for key in RECORD_KEYS])
    return out.getvalue().encode()


async def export_requests(gw: Any, request: Request, send: Send) -> None:
    query = request.query
    analytics = gw.analytics
    try:
        principal = await gw.auth.authenticate(request.headers)
        refuse_nul(request)
        flt = parse_filter(query, EXPORT_PARAMETERS)
        fmt = query_value(query, "format", "jsonl")
        if fmt not in _CONTENT_TYPES:
            raise BadRequest(f"format must be 'jsonl' or 'csv', got {fmt!r}")
        org = principal.organization
        page, cursor = await analytics.run(analytics.list_requests, org, flt, PAGE, None,
                                           True)
    except GatewayError as error:
        await send_error(send, error)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", _CONTENT_TYPES[fmt]),
        (b"content-disposition",
         f'attachment; filename="heliograph-requests.{fmt}"'.encode())]})
    first = True
    while True:
        chunk = jsonl_chunk(page) if fmt == "jsonl" else csv_chunk(page, header=first)
        first = False
        if not cursor or client_gone(request.receive):
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        try:
            page, cursor = await analytics.run(analytics.list_requests, org, flt, PAGE,
                                               cursor, True)
        except GatewayError as error:
            log.warning("export of %s stopped early: %s", org, error)
            chunk = b""
            break
    await send({"type": "http.response.body", "body": chunk, "more_body": False})
