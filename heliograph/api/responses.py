"""Stored responses, as OpenAI serves them: `GET /v1/responses/{id}`,
`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` — for the responses
the gateway kept (store/stored_responses.py: answers it translated for providers
without a store of their own), within the caller's organization."""

from __future__ import annotations

import asyncio
from typing import Any

from heliograph.api._common import endpoint, path_param, positive_int, query_value
from heliograph.asgi import Request
from heliograph.errors import BadRequest, NotFound, ServiceUnavailable
from heliograph.routes import Route
from heliograph.store.stored_responses import StoredResponse, StoredResponses

MAX_LIMIT = 100


def _check_query(request: Request, allowed: set[str]) -> None:
    unknown = sorted({name for name, _ in request.query} - allowed)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")


async def _run(gw: Any, operation: str, *args: str) -> Any:
    """A StoredResponses call in a worker thread; the database out is a 503, not a 500."""
    store = StoredResponses(gw.store)
    try:
        return await asyncio.to_thread(getattr(store, operation), *args)
    except store.outage_errors() as exc:
        raise ServiceUnavailable(f"stored responses cannot be read right now ({exc}); "
                                 "retry later", headers={"retry-after": "5"}) from None


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id {response_id!r} not found. (The gateway keeps the "
                    "responses of providers without a store of their own; OpenAI and Azure "
                    "keep theirs.)", code="response_not_found")


async def _stored(gw: Any, request: Request, org: str) -> StoredResponse:
    response_id = path_param(request, "response_id")
    found = await _run(gw, "get", org, response_id)
    if found is None:
        raise _not_found(response_id)
    return found


@endpoint
async def get_response(gw: Any, request: Request, org: str) -> dict:
    _check_query(request, {"include", "include[]", "stream"})
    if query_value(request.query, "stream", "false") != "false":
        raise BadRequest("stream=true is not supported for stored responses (stream)")
    return (await _stored(gw, request, org)).response


@endpoint
async def delete_response(gw: Any, request: Request, org: str) -> dict:
    _check_query(request, set())
    response_id = path_param(request, "response_id")
    if not await _run(gw, "delete", org, response_id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response", "deleted": True}


@endpoint
async def input_items(gw: Any, request: Request, org: str) -> dict:
    """OpenAI's cursor page: newest first unless order=asc, `after` an item id."""
    _check_query(request, {"after", "limit", "order", "include", "include[]"})
    limit = min(positive_int(request.query, "limit", 20), MAX_LIMIT)
    order = query_value(request.query, "order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be 'asc' or 'desc', got {order!r}")
    items = (await _stored(gw, request, org)).input_items
    if order == "desc":
        items = items[::-1]
    after = query_value(request.query, "after")
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > limit}


ROUTES = [
    *(Route(method, prefix + "/responses/{response_id}", handler)
      for prefix in ("/v1", "") for method, handler in (("GET", get_response),
                                                        ("DELETE", delete_response))),
    *(Route("GET", prefix + "/responses/{response_id}/input_items", input_items)
      for prefix in ("/v1", "")),
]
