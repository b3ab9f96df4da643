"""Plain running totals (add_total / totals, the calendar budgets' spend) on every
backend: exact under concurrent adds, read in one round trip, gone once expired."""

import asyncio
import time
import uuid

from state_backends import run


def test_totals_add_up_exactly_under_concurrency_and_read_together(backend):
    a, b, absent = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(3))

    async def go():
        state = backend.open()
        try:
            until = time.time() + 3600
            await asyncio.gather(*(state.add_total(a, 0.25, until) for _ in range(40)))
            assert await state.add_total(b, 1.5, until) is True
            assert await state.add_total(b, 0, until) is False     # nothing to add
            return await state.totals([a, absent, b])
        finally:
            await state.close()
    assert run(go()) == [10.0, 0.0, 1.5]


def test_an_expired_total_reads_zero_and_starts_again(backend):
    key = f"t-{uuid.uuid4().hex[:8]}"

    async def go():
        state = backend.open()
        try:
            await state.add_total(key, 5.0, time.time() + 1.2)
            first = await state.totals([key])
            await asyncio.sleep(2.3)   # Redis expiries have a one-second grain
            expired = await state.totals([key])
            await state.add_total(key, 1.0, time.time() + 3600)
            return first, expired, await state.totals([key])
        finally:
            await state.close()
    assert run(go()) == ([5.0], [0.0], [1.0])
