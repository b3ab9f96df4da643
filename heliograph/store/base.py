"""The narrow interface the proxy writes to: records, feedback and scores, keys.

Every method is synchronous: the gateway calls them from a worker thread (the journal
writer) or via asyncio.to_thread, never on the request path. The query API reads
through heliograph.analytics, on its own connections.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class KeyRow:
    id: str
    organization: str
    name: str
    prefix: str           # first characters of the key, for display
    admin: bool
    created_at: str
    revoked_at: str | None = None
    expires_at: str | None = None  # ISO 8601 UTC; None: never expires
    # The model names the key may call, as the caller writes them; None: any model.
    allowed_models: tuple[str, ...] | None = None
    # expires_at as a Unix time, parsed once per row so the per-request check is a compare.
    expires_ts: float | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.expires_at:
            when = datetime.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            self.expires_ts = when.timestamp()


class Store(Protocol):
    def migrate(self, until: int | None = None) -> None: ...
    def close(self) -> None: ...

    # -- log records --------------------------------------------------------------
    def insert_records(self, records: list[dict]) -> None:
        """Insert records (dicts with records.RECORD_KEYS). Idempotent on (organization,
        id): a record already stored is left as it is, so replaying a journal twice is
        harmless. Two organizations may use the same id."""

    def request_id_used(self, organization: str, request_id: str,
                        wait_s: float | None = None) -> bool:
        """Whether this organization already has a record with this id."""

    def index_search(self, limit: int = 5000) -> int:
        """Add up to `limit` stored bodies to the text-search index (it runs behind the
        writer: the search-index background job calls this); the number added."""

    def purge(self, records_before: str | None, bodies_before: str | None,
              batch: int = 2000) -> int:
        """Retention: delete one batch of records created before records_before and of
        bodies of records created before bodies_before (ISO 8601 UTC; None: keep). The
        number of rows deleted (0: nothing older is left)."""

    def prepare_partitions(self, now: float | None = None) -> None:
        """PostgreSQL: create the partitions of this month and the next ones, ahead of
        the writer (which also creates a missing one on demand). Elsewhere nothing."""

    def update_planner_stats(self, every_table: bool = False) -> None:
        """Refresh the query planner's statistics (SQLite: ANALYZE; PostgreSQL: ANALYZE
        of the tables that changed, or with every_table, after a bulk load whose changes
        the server's counters may not show yet, of all of them)."""

    def set_feedback(self, organization: str, request_id: str, rating: bool) -> bool: ...
    def set_score(self, organization: str, request_id: str, scores: dict) -> bool:
        """Merge into the record's scores. False (as for set_feedback) when the record is
        not (yet) stored in that organization."""

    # -- gateway keys -------------------------------------------------------------
    def create_key(self, key_hash: str, prefix: str, name: str, organization: str,
                   admin: bool, expires_at: str | None = None,
                   allowed_models: tuple[str, ...] | None = None) -> KeyRow:
        """ValueError if a key (live or revoked) already has this hash."""
    def find_key(self, key_hash: str, wait_s: float | None = None) -> KeyRow | None:
        """The live (not revoked) key with this hash."""
    def list_keys(self, organization: str | None = None) -> list[KeyRow]:
        """Revoked keys included (revoked_at set), oldest first."""
    def get_key(self, key_id: str, organization: str | None = None) -> KeyRow | None:
        """The key with this id (revoked or not), in that organization if given."""
    def revoke_key(self, key_id: str, organization: str | None = None) -> bool:
        """False if no such key (in that organization); revoking twice is True and keeps
        the first revoked_at."""
    def count_keys(self) -> int:
        """Live keys across all organizations."""
