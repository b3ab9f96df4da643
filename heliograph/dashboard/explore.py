"""Listing pages: requests (filters in the URL, keyset paging) and one request (the
conversation, raw JSON, attempts, cost breakdown, feedback and scores); sessions and one
session's trace tree."""

from __future__ import annotations

import datetime as _dt

import orjson

from heliograph.analytics.filters import PROPERTY_PREFIX
from heliograph.api._common import query_value
from heliograph.costs import Usage, cost_of
from heliograph.dashboard._filters import view_filters
from heliograph.dashboard.app import Context, Download, Page, Redirect, page
from heliograph.dashboard.conversation import conversation
from heliograph.dashboard.render import pretty_json
from heliograph.errors import BadRequest, NotFound

PAGE_SIZE = 50
# Raw JSON shown inline up to this size; the download link has the whole record.
MAX_SHOWN_CHARS = 500_000
# Form fields that add one property filter (the URL then holds property.<name>=<value>).
ADD_PROPERTY = ("add_property", "add_value")


@page()
async def requests(ctx: Context) -> Page | Redirect:
    name, value = (query_value(ctx.query, field) for field in ADD_PROPERTY)
    if name is not None:
        # The filter form's "property name / value" pair: rewritten as the query API's
        # property.<Name> parameter, so the URL stays the shareable, canonical one.
        rest = [(k, v) for k, v in ctx.query if k not in ADD_PROPERTY]
        if name.strip():
            rest.append((PROPERTY_PREFIX + name.strip(), value or ""))
        return Redirect(ctx.url("/requests", rest))
    view = view_filters(ctx.query, ("cursor",))
    records, next_cursor = await ctx.read(ctx.gw.analytics.list_requests, ctx.org, view.flt,
                                          PAGE_SIZE, view.own.get("cursor"))
    return Page("requests.html", {
        "nav": "requests", "view": view, "records": records,
        "next_url": ctx.url("/requests", [*view.pairs, ("cursor", next_cursor)])
        if next_cursor else None,
        "first_url": ctx.url("/requests", view.pairs) if view.own.get("cursor") else None})


def cost_breakdown(record: dict) -> list[dict]:
    """Each kind of token priced on its own at the model's list rate (the recorded total
    is what counts; a tiered price may make the parts differ from it slightly)."""
    provider, model = record.get("provider"), record.get("model_used") or record.get("model")
    if not provider or not model:
        return []
    cached = record.get("cached_tokens") or 0
    written = record.get("cache_write_tokens") or 0
    reasoning = record.get("reasoning_tokens") or 0
    prompt = record.get("prompt_tokens") or 0
    completion = record.get("completion_tokens") or 0
    try:
        when = _dt.datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    except (KeyError, AttributeError, ValueError):
        when = None
    base = cost_of(provider, model, Usage(), at=when)
    if not base.known:
        return []
    parts = [("input", Usage(prompt_tokens=max(0, prompt - cached - written)),
              max(0, prompt - cached - written)),
             ("cached input", Usage(prompt_tokens=cached, cached_tokens=cached), cached),
             ("cache write", Usage(prompt_tokens=written, cache_write_tokens=written), written),
             ("output", Usage(completion_tokens=max(0, completion - reasoning)),
              max(0, completion - reasoning)),
             ("reasoning", Usage(completion_tokens=reasoning, reasoning_tokens=reasoning),
              reasoning)]
    rows = []
    for label, usage, tokens in parts:
        if tokens:
            cost = cost_of(provider, model, usage, at=when)
            rows.append({"kind": label, "tokens": tokens,
                         "cost_usd": (cost.usd or 0) - (base.usd or 0) if cost.known else None})
    if base.usd:
        rows.append({"kind": "per request", "tokens": None, "cost_usd": base.usd})
    return rows


def _shown(value: object) -> tuple[str, bool]:
    """Pretty JSON for the page, cut at MAX_SHOWN_CHARS (the download has it all)."""
    text = pretty_json(value)
    return (text[:MAX_SHOWN_CHARS], True) if len(text) > MAX_SHOWN_CHARS else (text, False)


async def _record(ctx: Context) -> dict:
    request_id = ctx.request.scope["path_params"]["request_id"]
    if ctx.query:
        raise BadRequest("this page takes no query parameters")
    # One request with its bodies: the read side's own reader (wherever bodies live).
    record = await ctx.read(ctx.gw.analytics.get_request, ctx.org, request_id)
    if record is None:
        raise NotFound(f"no request {request_id!r} in this organization")
    return record


@page()
async def request(ctx: Context) -> Page:
    record = await _record(ctx)
    metadata = {k: v for k, v in record.items() if k not in ("request", "response")}
    raw_request, request_cut = _shown(record.get("request"))
    raw_response, response_cut = _shown(record.get("response"))
    return Page("request.html", {
        "nav": "requests", "record": record, "metadata": metadata,
        "raw_request": raw_request, "raw_response": raw_response,
        "raw_cut": request_cut or response_cut,
        "messages": conversation(record.get("request"), record.get("response")),
        "breakdown": cost_breakdown(record)})


@page()
async def request_json(ctx: Context) -> Download:
    record = await _record(ctx)
    return Download(orjson.dumps(record, option=orjson.OPT_INDENT_2),
                    f"request-{record['id']}.json")


@page()
async def sessions(ctx: Context) -> Page:
    view = view_filters(ctx.query, ("cursor",))  # all time, newest first (as rollups keep them)
    found, next_cursor = await ctx.read(ctx.gw.analytics.sessions, ctx.org, view.flt,
                                        PAGE_SIZE, view.own.get("cursor"))
    return Page("sessions.html", {
        "nav": "sessions", "view": view, "sessions": found,
        "next_url": ctx.url("/sessions", [*view.pairs, ("cursor", next_cursor)])
        if next_cursor else None})


def _timeline(tree: dict) -> list[dict]:
    """The tree flattened depth-first into rows (node headers and requests), each request
    placed on the session's timeline as left/width percentages."""
    records = []

    def collect(node: dict) -> None:
        records.extend(node["requests"])
        for child in node["children"]:
            collect(child)

    for node in tree["tree"]:
        collect(node)
    times = [_seconds(r["created_at"]) for r in records]
    start = min(times) if times else 0.0
    end = max((t + (r["latency_ms"] or 0) / 1000 for t, r in zip(times, records)),
              default=start)
    span = max(end - start, 1e-3)
    rows: list[dict] = []

    def walk(node: dict, depth: int) -> None:
        rows.append({"node": node, "depth": depth})
        for rec in node["requests"]:
            offset = _seconds(rec["created_at"]) - start
            rows.append({"record": rec, "depth": depth + 1,
                         "left": round(100 * offset / span, 2),
                         "width": max(0.5, round(100 * (rec["latency_ms"] or 0) / 1000 / span, 2))})
        for child in node["children"]:
            walk(child, depth + 1)

    for node in tree["tree"]:
        walk(node, 0)
    return rows


def _seconds(created_at: str) -> float:
    return _dt.datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


@page()
async def session(ctx: Context) -> Page:
    session_id = ctx.request.scope["path_params"]["session_id"]
    if ctx.query:
        raise BadRequest("this page takes no query parameters")
    tree = await ctx.read(ctx.gw.analytics.session, ctx.org, session_id)
    if tree is None:
        raise NotFound(f"no session {session_id!r} in this organization")
    return Page("session.html", {"nav": "sessions", "tree": tree, "rows": _timeline(tree)})
