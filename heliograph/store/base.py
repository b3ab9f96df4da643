"""The narrow interface the proxy writes to and the query API reads from.

Every method is synchronous: the gateway calls them from a worker thread (the journal
writer) or via asyncio.to_thread (the query API), never on the request path.
Every read is scoped to one organization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class RequestFilter:
    """Filters shared by /api/v1/requests, /metrics and /users (PRODUCT.md "Query API")."""

    model: str | None = None
    provider: str | None = None
    status: int | None = None
    user_id: str | None = None
    session_id: str | None = None
    cache: str | None = None            # "hit" | "miss"
    properties: dict[str, str] = field(default_factory=dict)  # names lower-cased
    since: str | None = None            # ISO 8601 UTC, inclusive
    until: str | None = None            # ISO 8601 UTC, exclusive
    q: str | None = None                # substring of request or response body


@dataclass
class KeyRow:
    id: str
    organization: str
    name: str
    prefix: str           # first characters of the key, for display
    admin: bool
    created_at: str
    revoked_at: str | None = None


class Store(Protocol):
    def migrate(self) -> None: ...
    def close(self) -> None: ...

    # -- log records --------------------------------------------------------------
    def insert_records(self, records: list[dict]) -> None:
        """Insert records (dicts with records.RECORD_KEYS). Idempotent on (organization,
        id): a record already stored is left as it is, so replaying a journal twice is
        harmless. Two organizations may use the same id."""

    def get_request(self, organization: str, request_id: str) -> dict | None: ...

    def request_id_used(self, organization: str, request_id: str,
                        wait_s: float | None = None) -> bool:
        """Whether this organization already has a record with this id."""

    def list_requests(self, organization: str, flt: RequestFilter, limit: int = 50,
                      cursor: str | None = None, with_bodies: bool = False
                      ) -> tuple[list[dict], str | None]:
        """Newest first. Returns (records, next_cursor or None). Bodies are None unless
        with_bodies; limit is clamped to 1..1000. ValueError for a cursor this store did
        not hand out or a since/until that is not ISO 8601."""

    def metrics(self, organization: str, flt: RequestFilter, group_by: str) -> dict:
        """{"data": [{"key", "requests", "errors", "error_rate", "cost_usd",
        "prompt_tokens", "completion_tokens", "avg_latency_ms", "p95_latency_ms",
        "cache_hits"}], "total": {...same without key}}

        group_by: model, provider, user_id, session_id, property.<name>, hour, day, week
        (key: the Monday), month; anything else raises ValueError. cost_usd sums only
        cost_known records; p95 is nearest-rank."""

    def users(self, organization: str, flt: RequestFilter) -> list[dict]:
        """Per user_id, most requests first: user_id, requests, errors, error_rate,
        cost_usd, prompt_tokens, completion_tokens, avg_latency_ms, first_seen,
        last_seen, models ({model: count})."""
    def user(self, organization: str, user_id: str) -> dict | None: ...
    def session(self, organization: str, session_id: str) -> dict | None:
        """{"session_id", "name", "requests", "cost_usd", "total_tokens", "latency_ms",
        "tree": [{"path", "name", "requests" (records without bodies, oldest first),
        "children", "cost_usd", "total_tokens", "latency_ms" (node + descendants)}]},
        or None when the session has no records."""

    def ratelimits(self, organization: str, flt: RequestFilter) -> dict:
        """{"data": [{"provider", "model", "latest" (the provider's x-ratelimit-* values),
        "latest_at", "requests_429", "rate_limited_over_time": [{"key": hour, "count"}]}]}"""

    def set_feedback(self, organization: str, request_id: str, rating: bool) -> bool: ...
    def set_score(self, organization: str, request_id: str, scores: dict) -> bool:
        """Merge into the record's scores. False (as for set_feedback) when the record is
        not (yet) stored in that organization."""

    # -- gateway keys -------------------------------------------------------------
    def create_key(self, key_hash: str, prefix: str, name: str, organization: str,
                   admin: bool) -> KeyRow:
        """ValueError if a key (live or revoked) already has this hash."""
    def find_key(self, key_hash: str, wait_s: float | None = None) -> KeyRow | None:
        """The live (not revoked) key with this hash."""
    def list_keys(self, organization: str | None = None) -> list[KeyRow]:
        """Revoked keys included (revoked_at set), oldest first."""
    def revoke_key(self, key_id: str, organization: str | None = None) -> bool:
        """False if no such key (in that organization); revoking twice is True and keeps
        the first revoked_at."""
    def count_keys(self) -> int:
        """Live keys across all organizations."""
