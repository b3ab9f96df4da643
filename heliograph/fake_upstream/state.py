"""Per-server state: the request log, rate-limit counters, fail-then-ok counters."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

REQUESTS_LIMIT = 10_000
TOKENS_LIMIT = 2_000_000
STORED_RESPONSES = 1_000


class FakeState:
    def __init__(self, *, max_recorded: int = 200, chunk_delay_ms: float = 0.0):
        self.recorded: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self.chunk_delay_ms = chunk_delay_ms
        self.counters: dict[str, int] = {}
        self.requests_served = 0
        self.tokens_used = 0
        # OpenAI's response store: created (non-streamed) responses by id, the newest kept.
        self.responses: dict[str, dict[str, Any]] = {}

    def keep_response(self, response: dict[str, Any]) -> None:
        if len(self.responses) >= STORED_RESPONSES:
            self.responses.pop(next(iter(self.responses)))
        self.responses[response["id"]] = response

    # -- request log -------------------------------------------------------
    def record(self, request: web.Request, raw: bytes) -> None:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
        self.recorded.append({
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": headers,
            "body": body,
            "time": time.time(),
        })

    # -- fail-then-ok ------------------------------------------------------
    def bump(self, key: str) -> int:
        """Count one more request for ``key``; returns the new count (1-based)."""
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    # -- rate-limit headers ------------------------------------------------
    def rate_limit_headers(self, tokens: int, *, exhausted: bool = False) -> dict[str, str]:
        self.requests_served += 1
        self.tokens_used += tokens
        remaining_requests = REQUESTS_LIMIT - 1 - (self.requests_served - 1) % REQUESTS_LIMIT
        remaining_tokens = TOKENS_LIMIT - self.tokens_used % TOKENS_LIMIT
        if exhausted:
            remaining_requests = remaining_tokens = 0
        return {
            "x-ratelimit-limit-requests": str(REQUESTS_LIMIT),
            "x-ratelimit-remaining-requests": str(remaining_requests),
            "x-ratelimit-reset-requests": "1s" if exhausted else "20ms",
            "x-ratelimit-limit-tokens": str(TOKENS_LIMIT),
            "x-ratelimit-remaining-tokens": str(remaining_tokens),
            "x-ratelimit-reset-tokens": "1s" if exhausted else "6ms",
        }


STATE_KEY = web.AppKey("heliograph_fake_state", FakeState)
