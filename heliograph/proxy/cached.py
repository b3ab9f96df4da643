"""Answering from the response cache, and filling it after an answer was sent.

The cache holds answers in the pipeline's middle format (OpenAI JSON, or the stream's
OpenAI chunk payloads), so a hit is rendered through the caller's front like a live
answer, and a cached stream is replayed as a stream.
"""

from __future__ import annotations

import hashlib
import time

import orjson

from heliograph.asgi import send_bytes
from heliograph.formats.openai.chat import include_usage
from heliograph.proxy.cache import CachedAnswer, entry_id
from heliograph.proxy.flow import Flow
from heliograph.proxy.routing import Answer, relayable


def cache_scope(flow: Flow) -> str:
    """Whose entries a request may see. Helicone's default: one gateway key's (and, with
    the caller's own provider key, that provider key's: another caller's paid answers are
    not served to it); `[cache] scope = "organization"` shares them across the keys of
    an organization."""
    principal, options = flow.principal, flow.options
    scope = principal.organization
    if flow.gw.settings.cache_scope != "organization":
        scope += f"\x00{principal.key_id}"
        if principal.provider_authorization is not None:
            own = hashlib.sha256(principal.provider_authorization.encode()).hexdigest()[:32]
            scope += f"\x00{own}"
    target = options.target_url or options.openai_api_base
    if target:  # another server's answer to the same body is another answer
        scope += f"\x00{target}"
    return scope


async def serve_hit(flow: Flow, stream: bool) -> bool:
    """True when the request was answered from the cache."""
    record = flow.exchange.record
    started = time.perf_counter()
    cache = flow.gw.cache
    keys = cache.keys(cache_scope(flow), flow.request.path, flow.body, flow.options)
    # The entry, hit or missed: the Cache page groups hits by it, and finds the miss that
    # filled it (the keys are computed for the lookup anyway: a slice costs nothing).
    record["cache_entry"] = entry_id(keys)
    hit = await cache.lookup_keys(keys)
    # Helicone-Cache-Latency: how long the lookup took, in milliseconds.
    flow.extra_headers.append((b"helicone-cache-latency", str(
        round((time.perf_counter() - started) * 1000)).encode()))
    # A stream is replayed from an entry's events, a JSON answer from its body: an entry
    # without the one this request needs is a miss.
    events = hit.events if hit is not None and stream else None
    body = hit.body if hit is not None and not stream else None
    if hit is None or (events is None and body is None):
        record["cache"] = "miss"
        flow.extra_headers.append((b"helicone-cache", b"MISS"))
        return False
    record["cache"] = "hit"
    record["cache_reference_id"] = hit.request_id
    record["provider"] = hit.provider
    record["model_used"] = hit.model
    flow.extra_headers += [(b"helicone-cache", b"HIT"),
                           (b"helicone-cache-bucket-idx", str(hit.bucket_index).encode())]
    flow.exchange.set_usage(hit.usage, hit.model)
    # A hit costs nothing; what the call would have cost is what it saved.
    if record["cost_known"]:
        record["cost_saved_usd"], record["cost_usd"] = record["cost_usd"], 0.0
    if events is not None:
        await _replay_stream(flow, hit, events)
    elif body is not None:
        await _replay_json(flow, hit, body)
    return True


async def _replay_json(flow: Flow, hit: CachedAnswer, body: bytes) -> None:
    parsed = orjson.loads(body)
    out, logged = flow.front.response(parsed, body)
    flow.exchange.set_response(logged)
    flow.exchange.log(hit.status)
    await send_bytes(flow.send, hit.status, out, flow.response_headers(hit.headers))


async def _replay_stream(flow: Flow, hit: CachedAnswer, events: list[bytes]) -> None:
    # The front's reader: a Responses stream is read for its final response, not chunks.
    acc = flow.front.accumulator(flow.options.stream_usage
                                 and not include_usage(flow.openai_body))
    renderer = flow.front.stream()
    headers = flow.response_headers(hit.headers)
    headers += [(b"content-type", renderer.content_type), (b"cache-control", b"no-cache")]
    chunks = []
    ttft = None
    for payload in events:
        out = acc.process(payload)
        if out is not None:
            chunks.append(renderer.render(out))
        if ttft is None and acc.saw_content:
            ttft = flow.exchange.elapsed_ms()
    flow.exchange.set_response(renderer.logged(acc.completion()))
    flow.exchange.log(200, ttft)
    chunks.append(renderer.finish())
    await flow.send({"type": "http.response.start", "status": 200, "headers": headers})
    # The whole replay in one write: it is all here already.
    await flow.send({"type": "http.response.body", "body": b"".join(chunks),
                     "more_body": False})


def store_later(flow: Flow, answer: Answer, body: bytes | None, events: list[bytes] | None,
                usage: dict | None) -> None:
    """Schedule the cache write; the caller already has its answer."""
    record = flow.exchange.record
    cached = CachedAnswer(status=200, headers=relayable(answer.opened.headers), body=body,
                          events=events, model=record["model_used"],
                          provider=record["provider"], usage=usage, request_id=record["id"])
    flow.gw.cache.store_later(cache_scope(flow), flow.request.path, flow.body, flow.options,
                              cached)
