"""Caller-chosen record ids (Helicone-Request-Id) made unique within an organization.

PRODUCT.md: an id already used gets a fresh UUID, returned in Helicone-Id, and no record
is ever dropped. Only requests that choose their id pay for the check; everyone else's id
is a fresh random UUID and skips it. The check, in order:

  1. ids this process handed out recently (a record still in this worker's journal);
  2. a claim in the shared state (the database, or Redis across replicas), atomic, held
     for CLAIM_WINDOW_S: two workers or replicas given the same id at the same instant
     cannot both keep it, so the Helicone-Id each answers is the id its record is stored
     under;
  3. one primary-key lookup (bounded in time) for records older than the claim.
What none of them can see (the shared state and the database both down) the writer
catches: the later record is stored under a fresh id, saying so (store/_sql.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict

import orjson

log = logging.getLogger("heliograph.request_ids")

# The longest a request waits on the check; unreachable or slower counts as unused.
CHECK_WAIT_S = 1.0
# Recently claimed (organization, id) pairs remembered by this process.
REMEMBERED = 50_000
# After a failed check the database is not asked again for this long (requests do not
# wait on a database that is down; the writer keeps both records if an id collides).
SKIP_AFTER_FAILURE_S = 5.0
# How long a claim in the shared state lasts: far beyond the journal's delay, so a record
# is in the database (where step 3 finds it) long before its claim expires.
CLAIM_WINDOW_S = 3600.0


def claim_key(organization: str, request_id: str) -> str:
    return "rid:" + hashlib.sha256(orjson.dumps([organization, request_id])).hexdigest()[:40]


class RequestIds:
    def __init__(self, store):
        self.store = store
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._outage_errors: tuple[type[BaseException], ...] = (
            getattr(store, "outage_errors", ()) + (TimeoutError,))
        self._skip_until = 0.0  # monotonic

    async def claim(self, organization: str, request_id: str, state) -> bool:
        """True when the organization has not used request_id (it now has); False when
        it has, and the request needs a fresh id. `state`: the shared state."""
        key = (organization, request_id)
        if key in self._recent:
            return False
        # Taken before the lookup is awaited, so a concurrent duplicate sees it.
        self._recent[key] = None
        if len(self._recent) > REMEMBERED:
            self._recent.popitem(last=False)
        claimed = await state.hit(claim_key(organization, request_id), CLAIM_WINDOW_S, 1)
        if not claimed.allowed and not claimed.degraded:
            return False  # another worker or replica has it
        if time.monotonic() < self._skip_until:
            return True
        try:
            used = await asyncio.wait_for(asyncio.to_thread(
                self.store.request_id_used, organization, request_id, CHECK_WAIT_S),
                CHECK_WAIT_S)
        except self._outage_errors as exc:
            # The database cannot say: keep the caller's id (the usual case is a new one).
            self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
            log.warning("could not check whether request id %s is already used: %s",
                        request_id, exc or "timeout")
            return True
        return not used
