"""OpenAI's files (upload, list, get, delete, content) and batches (create, list, get,
cancel), faked in memory, per fake server."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from . import openai_format as fmt
from .forms import form
from .openai_api import _begin, _check_auth, _headers, _invalid, _json, _send

FILES: web.AppKey[dict[str, dict]] = web.AppKey("fake_files", dict)
BATCHES: web.AppKey[dict[str, dict]] = web.AppKey("fake_batches", dict)


def register(app: web.Application) -> None:
    app[FILES] = {}
    app[BATCHES] = {}
    for p in ("/v1", ""):
        app.router.add_post(f"{p}/files", upload_file)
        app.router.add_get(f"{p}/files", list_files)
        app.router.add_get(f"{p}/files/{{file_id}}", get_file)
        app.router.add_delete(f"{p}/files/{{file_id}}", delete_file)
        app.router.add_get(f"{p}/files/{{file_id}}/content", file_content)
        app.router.add_post(f"{p}/batches", create_batch)
        app.router.add_get(f"{p}/batches", list_batches)
        app.router.add_get(f"{p}/batches/{{batch_id}}", get_batch)
        app.router.add_post(f"{p}/batches/{{batch_id}}/cancel", cancel_batch)


def _missing(request: web.Request, t0: float, what: str, ident: str) -> web.Response:
    return _json(404, fmt.error_body(f"No such {what}: {ident}", "invalid_request_error",
                                     None, "id"), _headers(request, t0))


async def upload_file(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    formed = await form(request, t0)
    if isinstance(formed, web.StreamResponse):
        return formed
    fields, files, b = formed
    if "file" not in files or not fields.get("purpose"):
        return _invalid(request, t0, "file and purpose are required", "file")
    file_id = "file-" + secrets.token_hex(12)
    entry = {"id": file_id, "object": "file", "bytes": len(files["file"]),
             "created_at": int(time.time()), "filename": "upload",
             "purpose": fields["purpose"], "status": "processed"}
    request.app[FILES][file_id] = {"meta": entry, "content": files["file"]}
    return await _send(request, t0, entry, b, 0)


async def list_files(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    purpose = request.query.get("purpose")
    data = [f["meta"] for f in request.app[FILES].values()
            if purpose is None or f["meta"]["purpose"] == purpose]
    return _json(200, {"object": "list", "data": data, "has_more": False},
                 _headers(request, t0))


async def _stored_file(request: web.Request, t0: float) -> dict | web.Response:
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    file_id = request.match_info["file_id"]
    stored = request.app[FILES].get(file_id)
    return stored if stored is not None else _missing(request, t0, "file", file_id)


async def get_file(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    stored = await _stored_file(request, t0)
    if isinstance(stored, web.Response):
        return stored
    return _json(200, stored["meta"], _headers(request, t0))


async def delete_file(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    stored = await _stored_file(request, t0)
    if isinstance(stored, web.Response):
        return stored
    del request.app[FILES][stored["meta"]["id"]]
    return _json(200, {"id": stored["meta"]["id"], "object": "file", "deleted": True},
                 _headers(request, t0))


async def file_content(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    stored = await _stored_file(request, t0)
    if isinstance(stored, web.Response):
        return stored
    return web.Response(body=stored["content"], content_type="application/octet-stream",
                        headers=_headers(request, t0))


BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions",
                   "/v1/responses")


async def create_batch(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    begun = await _begin(request, t0, True)
    if isinstance(begun, web.StreamResponse):
        return begun
    body, b = begun
    if not isinstance(body, dict):
        return _invalid(request, t0, "the body must be an object")
    file_id = body.get("input_file_id")
    if file_id not in request.app[FILES]:
        return _invalid(request, t0, f"No such file: {file_id}", "input_file_id")
    if body.get("endpoint") not in BATCH_ENDPOINTS:
        return _invalid(request, t0, "endpoint must be one of " + ", ".join(BATCH_ENDPOINTS),
                        "endpoint")
    if body.get("completion_window") != "24h":
        return _invalid(request, t0, "completion_window must be 24h", "completion_window")
    batch = {"id": "batch_" + secrets.token_hex(12), "object": "batch",
             "endpoint": body["endpoint"], "input_file_id": file_id,
             "completion_window": "24h", "status": "validating",
             "created_at": int(time.time()), "output_file_id": None, "error_file_id": None,
             "errors": None, "metadata": body.get("metadata"),
             "request_counts": {"total": 0, "completed": 0, "failed": 0}}
    request.app[BATCHES][batch["id"]] = batch
    return await _send(request, t0, batch, b, 0)


async def list_batches(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    return _json(200, {"object": "list", "data": list(request.app[BATCHES].values()),
                       "has_more": False}, _headers(request, t0))


async def get_batch(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    batch = request.app[BATCHES].get(request.match_info["batch_id"])
    if batch is None:
        return _missing(request, t0, "batch", request.match_info["batch_id"])
    return _json(200, batch, _headers(request, t0))


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    t0 = time.monotonic()
    denied = _check_auth(request, t0)
    if denied is not None:
        return denied
    batch = request.app[BATCHES].get(request.match_info["batch_id"])
    if batch is None:
        return _missing(request, t0, "batch", request.match_info["batch_id"])
    batch["status"] = "cancelling"
    return _json(200, batch, _headers(request, t0))
