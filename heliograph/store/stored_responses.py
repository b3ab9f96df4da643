"""Stored responses (migration 8): what `store: true` keeps of a Responses API answer
the gateway translated, so `GET /v1/responses/{id}`, its input items and
`previous_response_id` work on providers that keep nothing. Scoped per organization:
one organization never reads another's. Providers with a store of their own (OpenAI,
Azure) keep theirs; the gateway does not copy them.

Blocking calls, made from a worker thread (asyncio.to_thread) by proxy/responses.py and
api/responses.py. Those on the request path wait at most WAIT_S for a connection: an
unreachable database fails them fast (the store's outage_errors), not after the pool's
long timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from heliograph.records import utc_iso
from heliograph.store._schema import dumps, loads
from heliograph.store._sql import SQLStore
from heliograph.store.base import Store

WAIT_S = 2.0


@dataclass
class StoredResponse:
    response: dict
    input_items: list[dict]


class StoredResponses:
    def __init__(self, store: Store) -> None:
        self.store = cast(SQLStore, store)  # both stores are SQLStores

    def save(self, organization: str, response: dict, input_items: list[dict]) -> None:
        created = response.get("created_at")
        at = utc_iso(float(created) if isinstance(created, (int, float)) else time.time())
        with self.store.transaction(write=True, wait_s=WAIT_S) as cur:
            # The same id again (a cached answer replayed) keeps the first conversation.
            self.store.execute(cur, "INSERT INTO stored_responses (organization, id,"
                                    " created_at, response_json, input_json)"
                                    " VALUES (?, ?, ?, ?, ?)"
                                    " ON CONFLICT (organization, id) DO NOTHING",
                               (organization, str(response["id"]), at, dumps(response),
                                dumps(input_items)))
            items = [(organization, item["id"], str(response["id"]), dumps(item))
                     for item in response.get("output") or ()
                     if isinstance(item, dict) and isinstance(item.get("id"), str)]
            if items:
                self.store.executemany(cur, "INSERT INTO stored_response_items"
                                            " (organization, id, response_id, item_json)"
                                            " VALUES (?, ?, ?, ?)"
                                            " ON CONFLICT (organization, id) DO NOTHING",
                                       items)

    def get(self, organization: str, response_id: str) -> StoredResponse | None:
        with self.store.transaction(write=False, wait_s=WAIT_S) as cur:
            row = self.store.execute(cur, "SELECT response_json, input_json"
                                          " FROM stored_responses"
                                          " WHERE organization = ? AND id = ?",
                                     (organization, response_id)).fetchone()
        return StoredResponse(loads(row[0]), loads(row[1])) if row else None

    def items(self, organization: str, item_ids: list[str]) -> dict[str, dict]:
        """Stored output items by id (those found)."""
        if not item_ids:
            return {}
        marks = ", ".join("?" * len(item_ids))
        with self.store.transaction(write=False, wait_s=WAIT_S) as cur:
            rows = self.store.execute(cur, "SELECT id, item_json FROM stored_response_items"
                                           f" WHERE organization = ? AND id IN ({marks})",
                                      (organization, *item_ids)).fetchall()
        return {row[0]: loads(row[1]) for row in rows}

    def delete(self, organization: str, response_id: str) -> bool:
        with self.store.transaction(write=True, wait_s=WAIT_S) as cur:
            self.store.execute(cur, "DELETE FROM stored_response_items"
                                    " WHERE organization = ? AND response_id = ?",
                               (organization, response_id))
            self.store.execute(cur, "DELETE FROM stored_responses"
                                    " WHERE organization = ? AND id = ?",
                               (organization, response_id))
            return cur.rowcount > 0

    def outage_errors(self) -> tuple[type[BaseException], ...]:
        """What the driver raises when the database cannot answer now."""
        return self.store.outage_errors + (TimeoutError,)
