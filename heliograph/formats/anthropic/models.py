"""Model listings in Anthropic's shape (`GET /v1/models` as the Anthropic SDK reads it):
`{"data": [{"type": "model", "id", "display_name", "created_at"}], "has_more",
"first_id", "last_id"}`, paged by `limit` (1–1000, default 20), `after_id`, `before_id`.
Built from the gateway's OpenAI-shaped entries (`id`, `created`)."""

from __future__ import annotations

import datetime as _dt

from heliograph.asgi import is_whole_number
from heliograph.errors import BadRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def anthropic_model(entry: dict) -> dict:
    created = entry.get("created")
    stamp = _dt.datetime.fromtimestamp(created if isinstance(created, int) else 0, _dt.UTC)
    return {"type": "model", "id": entry["id"], "display_name": entry["id"],
            "created_at": stamp.isoformat().replace("+00:00", "Z")}


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not is_whole_number(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadRequest(f"limit: must be a whole number from 1 to {MAX_LIMIT}",
                         code="invalid_request")
    return int(value)


def anthropic_page(entries: list[dict], query: list[tuple[str, str]]) -> dict:
    params = dict(query)
    limit = _limit(params.get("limit"))
    ids = [e["id"] for e in entries]
    start, end = 0, len(entries)
    for name in ("after_id", "before_id"):
        if name in params and params[name] not in ids:
            raise BadRequest(f"{name}: no model {params[name]!r} in the listing",
                             code="invalid_request")
    if "after_id" in params:
        start = ids.index(params["after_id"]) + 1
    if "before_id" in params:
        end = ids.index(params["before_id"])
        start = max(start, end - limit) if "after_id" not in params else start
    window = entries[start:end]
    page = window[:limit]
    data = [anthropic_model(e) for e in page]
    return {"data": data, "has_more": len(window) > limit or (
                "before_id" in params and start > 0),
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
