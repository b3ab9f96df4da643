"""multipart/form-data requests as the fake reads them: with the standard library's email
parser (nothing shared with the gateway's own streaming form reader)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

from aiohttp import web

from . import faults
from .behavior import HEADER, BehaviorError, parse
from .openai_api import _check_auth, _error_factory, _invalid


async def form(request: web.Request, t0: float
                ) -> tuple[dict[str, str], dict[str, bytes], Any] | web.StreamResponse:
    """(text fields, file parts by field name, behaviour) of a multipart request."""
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    content_type = request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return _invalid(request, t0, "this endpoint takes multipart/form-data")
    raw = await request.read()
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) else b""
            if not isinstance(name, str):
                continue
            if part.get_filename() is not None:
                files[name] = payload
            else:
                fields[name] = payload.decode("utf-8", "replace")
    try:
        b = parse(request.headers.get(HEADER), fields.get("model"))
    except BehaviorError as exc:
        return _invalid(request, t0, str(exc))
    early = await faults.preamble(request, b, f"model:{fields.get('model')}",
                                  _error_factory(request, t0))
    return early if early is not None else (fields, files, b)
