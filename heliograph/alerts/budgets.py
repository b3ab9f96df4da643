"""Budgets on the request path: the spend counters and the check that refuses requests
once an enforced budget is used up.

Spend lives in the shared state (heliograph/state/: the database, or Redis across
replicas), one counter per budget and period, as the rate-limit policies keep theirs:
  - every finished record adds its logged cost_usd to the counter of each budget whose
    scope it is in (this object is also a record sink), so a cache hit adds nothing and
    the counter is the same for every worker and replica;
  - a request in the scope of an enforced budget costs one shared-state round trip (all
    its budgets at once); a request in no budget's scope costs a dict lookup.
Calendar periods are plain totals (state add_total/totals), in a key of their own per
period, so the next period starts at 0 and a check reads one value however many requests
were counted; rolling windows are the state's sliding windows. (A request in the scope of
both kinds of enforced budget makes one round trip for each kind.)

Each worker keeps the organization's budgets in memory, reloaded every REFRESH_S, so a
budget created, changed or deleted on another worker or replica applies within that.
A request already under way when the limit is reached may overshoot it (its cost is
known only at the end); the next one is refused.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from heliograph.alerts import repo
from heliograph.alerts.model import Budget
from heliograph.alerts.windows import ROLLING_S, span
from heliograph.errors import BudgetExceeded
from heliograph.proxy.background import BackgroundTasks
from heliograph.records import utc_iso
from heliograph.state.base import Check, SharedState

log = logging.getLogger("heliograph.budgets")

REFRESH_S = 2.0
# A calendar period's total outlives the period by this much (the key changes with the
# period, so it is never read after it; the margin only keeps it for a late look).
_TOTAL_MARGIN_S = 3600.0


class Budgets:
    def __init__(self, store, timezone: str = "UTC",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.timezone = timezone
        self.clock = clock
        self.state: SharedState | None = None
        self.by_org: dict[str, list[Budget]] = {}
        # Organizations with at least one enforced budget: the pipeline's one test.
        self.enforced: frozenset[str] = frozenset()
        self._background = BackgroundTasks(log)
        self._refresher: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, state: SharedState) -> None:
        """Loads the budgets in the background: a database that is down or slow at
        startup must not delay serving (budgets then apply once it answers)."""
        self.state = state
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception as exc:  # noqa: BLE001 - keep the budgets last seen
                log.warning("cannot reload budgets (%s); keeping the last ones", exc)
            await asyncio.sleep(REFRESH_S)

    async def reload(self) -> None:
        self.use(await asyncio.to_thread(repo.list_budgets, self.store))

    def use(self, budgets: list[Budget]) -> None:
        by_org: dict[str, list[Budget]] = {}
        for budget in budgets:
            by_org.setdefault(budget.organization, []).append(budget)
        self.by_org = by_org
        self.enforced = frozenset(org for org, items in by_org.items()
                                  if any(b.enforce for b in items))

    async def drain(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await self._background.drain()

    # -- counters -----------------------------------------------------------------------
    def counter(self, budget: Budget, now: float) -> tuple[str, float, float | None]:
        """(state key, sliding window for a rolling period or 0, the calendar period's
        end or None)."""
        if budget.period in ROLLING_S:
            return f"budget:{budget.id}", float(ROLLING_S[budget.period]), None
        period = span(budget.period, now, self.timezone)
        return f"budget:{budget.id}:{int(period.start)}", 0.0, period.end

    async def _spent(self, budgets: list[Budget], now: float
                     ) -> list[tuple[float | None, float]]:
        """(spend, reset time) per budget, spend None when the state is unreachable: one
        round trip for the calendar budgets, one for the rolling ones."""
        assert self.state is not None
        counters = [self.counter(b, now) for b in budgets]
        out: list[tuple[float | None, float]] = [(None, now)] * len(budgets)
        calendar = [i for i, (_, _, end) in enumerate(counters) if end is not None]
        if calendar:
            totals = await self.state.totals([counters[i][0] for i in calendar])
            for i, j in enumerate(calendar):
                end = counters[j][2]
                assert end is not None
                out[j] = (None if totals is None else totals[i], end)
        rolling = [i for i, (_, _, end) in enumerate(counters) if end is None]
        if rolling:
            hits = await self.state.hit_many(
                [Check(counters[i][0], counters[i][1], budgets[i].limit_usd, 0)
                 for i in rolling], now)
            for i, hit in zip(rolling, hits):
                out[i] = (None if hit.degraded else hit.used, now + hit.reset_s)
        return out

    def in_scope(self, organization: str, record: Mapping[str, Any],
                 enforced_only: bool = False) -> list[Budget]:
        budgets = self.by_org.get(organization)
        if not budgets:
            return []
        properties = {str(k).lower(): v for k, v in (record.get("properties") or {}).items()}
        return [b for b in budgets if (b.enforce or not enforced_only)
                and b.matches(record.get("key_id"), record.get("user_id"), properties)]

    async def spend(self, budget: Budget) -> tuple[float | None, float]:
        """(spend now, reset time): what the API shows. Spend None: state unreachable."""
        return (await self._spent([budget], self.clock()))[0]

    async def seed(self, budget: Budget, spent: float) -> None:
        """Start a new calendar budget's counter from what the log already holds for
        the current period (a budget made mid-month counts the month so far)."""
        if self.state is not None and spent > 0:
            key, _, end = self.counter(budget, self.clock())
            if end is not None:
                await self.state.add_total(key, spent, end + _TOTAL_MARGIN_S)

    # -- the request path ---------------------------------------------------------------
    async def check(self, organization: str, record: Mapping[str, Any]) -> None:
        """Raise BudgetExceeded (429) when an enforced budget in this request's scope is
        used up. One shared-state round trip for all of them."""
        budgets = self.in_scope(organization, record, enforced_only=True)
        if not budgets or self.state is None:
            return
        now = self.clock()
        for budget, (spent, reset_at) in zip(budgets, await self._spent(budgets, now)):
            if spent is None:
                # The counters are unreachable: as rate limits do, let the request
                # through unless [limits] ratelimit_fail_open = false.
                if not self.state.fail_open:
                    raise BudgetExceeded(
                        f"budget_exceeded: budget {budget.name!r} ({budget.id}) cannot be "
                        "checked (shared state unavailable) and limits fail closed",
                        headers={"retry-after": "5", "x-helicone-error": "budget_exceeded"})
                continue
            if spent >= budget.limit_usd:
                raise _refusal(budget, spent, reset_at, now)

    # -- the record sink ----------------------------------------------------------------
    def accept(self, record: Mapping[str, Any]) -> None:
        cost = record.get("cost_usd")
        if not cost or cost <= 0 or self.state is None:
            return  # free (a cache hit), unpriced, or not started
        budgets = self.in_scope(record.get("organization") or "", record)
        if budgets:
            self._background.start(self._add(budgets, float(cost)), "counting budget spend")

    async def _add(self, budgets: list[Budget], cost: float) -> None:
        assert self.state is not None
        now = self.clock()
        for budget in budgets:
            key, window, end = self.counter(budget, now)
            if end is None:
                await self.state.add(key, window, cost, now)
            else:
                await self.state.add_total(key, cost, end + _TOTAL_MARGIN_S)

    def close(self) -> None:
        pass  # counting tasks are drained by drain() at shutdown


def _refusal(budget: Budget, spent: float, reset_at: float, now: float) -> BudgetExceeded:
    wait = max(1, math.ceil(reset_at - now))
    message = (f"budget_exceeded: budget {budget.name!r} ({budget.id}) is used up: spend "
               f"${spent:.4f} of ${budget.limit_usd:.4f} per {budget.period}; it resets at "
               f"{utc_iso(reset_at)[:19]}Z")
    return BudgetExceeded(message, headers={"retry-after": str(wait),
                                            "x-helicone-error": "budget_exceeded"})
