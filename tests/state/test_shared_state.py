"""SharedState conformance: the same behaviour from SQLite, PostgreSQL and Redis."""

import asyncio
import time
import uuid

import pytest
from state_backends import EXPIRY_TTLS_S, ExpiryRound, allowed_across_processes, run

from heliograph.config import Settings
from heliograph.state import Check, open_state

# Explicit times are offsets from the real clock: the SQL sweep and Redis key expiry
# run on it, and would drop events stamped in the distant past — so T is taken afresh
# for every test, not once when the (long) test session imports this module.
T = time.time()


@pytest.fixture(autouse=True)
def fresh_clock():
    global T
    T = time.time()


def key() -> str:
    return "k-" + uuid.uuid4().hex[:8]


# -- cache --------------------------------------------------------------------------------

def test_cache_round_trip_keeps_bytes_exactly(backend):
    value = bytes(range(256)) * 3 + b"\x00tail"

    async def go():
        state = backend.open()
        try:
            assert await state.cache_set("a", value, 60) is True
            assert await state.cache_get("a") == value
            assert await state.cache_get("missing") is None
            assert await state.cache_set("a", b"replaced", 60) is True
            return await state.cache_get("a")
        finally:
            await state.close()
    assert run(go()) == b"replaced"


def test_cache_filled_reports_each_key(backend):
    async def go():
        state = backend.open()
        try:
            await state.cache_set("x1", b"1", 60)
            await state.cache_set("x3", b"3", 60)
            return await state.cache_filled(["x1", "x2", "x3"])
        finally:
            await state.close()
    assert run(go()) == [True, False, True]


def test_only_if_absent_keeps_the_live_value_and_replaces_an_expired_one(backend):
    async def go():
        state = backend.open()
        try:
            first = await state.cache_set("slot", b"first", 60, only_if_absent=True)
            second = await state.cache_set("slot", b"second", 60, only_if_absent=True)
            kept = await state.cache_get("slot")
            await state.cache_set("short", b"old", 0.05)
            await asyncio.sleep(0.15)
            after_expiry = await state.cache_set("short", b"new", 60, only_if_absent=True)
            return first, second, kept, after_expiry, await state.cache_get("short")
        finally:
            await state.close()
    assert run(go()) == (True, False, b"first", True, b"new")


def test_cache_ttl_expiry_is_a_miss(backend):
    async def go():
        state = backend.open()
        try:
            for ttl_s in EXPIRY_TTLS_S:  # a longer TTL only if the machine is too slow
                name, expiry = f"ttl-{ttl_s}", ExpiryRound(ttl_s)
                await state.cache_set(name, b"v", ttl_s)
                before = await state.cache_get(name), await state.cache_filled([name])
                if expiry.read_in_time():
                    break
            await expiry.sleep_past_expiry()
            after = await state.cache_get(name), await state.cache_filled([name])
            zero = await state.cache_set("zero", b"v", 0)
            return before, after, zero, await state.cache_get("zero")
        finally:
            await state.close()
    before, after, zero, zero_value = run(go())
    assert before == (b"v", [True])
    assert after == (None, [False])
    assert (zero, zero_value) == (False, None)  # a TTL of 0 stores nothing


# -- counters -----------------------------------------------------------------------------

def test_hit_counts_up_to_the_quota_and_refusals_use_nothing(backend):
    async def go():
        state = backend.open()
        try:
            k = key()
            hits = [await state.hit(k, 60, 3, now=T + 1000.0 + i) for i in range(5)]
            return hits, await state.used(k, 60, now=T + 1010.0)
        finally:
            await state.close()
    hits, used = run(go())
    assert [h.allowed for h in hits] == [True, True, True, False, False]
    assert [h.used for h in hits] == [1, 2, 3, 3, 3]
    assert [h.remaining for h in hits] == [2, 1, 0, 0, 0]
    assert abs(hits[3].reset_s - 57) < 1e-3  # the first hit (t=1000) leaves the window at 1060
    assert not any(h.degraded for h in hits)
    assert used == 3


def test_window_slides(backend):
    async def go():
        state = backend.open()
        try:
            k = key()
            out = [await state.hit(k, 10, 2, now=T + t) for t in (100.0, 105.0, 108.0)]
            out.append(await state.hit(k, 10, 2, now=T + 110.0))   # t=100 has just left
            out.append(await state.hit(k, 10, 2, now=T + 110.5))   # 105 and 110 still in
            out.append(await state.hit(k, 10, 2, now=T + 115.01))  # 105 has left
            return out, await state.used(k, 10, now=T + 200.0)
        finally:
            await state.close()
    hits, later = run(go())
    assert [h.allowed for h in hits] == [True, True, False, True, False, True]
    assert abs(hits[2].reset_s - 2.0) < 1e-3  # 100 + 10 - 108
    assert abs(hits[4].reset_s - 4.5) < 1e-3  # 105 + 10 - 110.5
    assert later == 0


def test_hit_many_is_all_or_nothing(backend):
    async def go():
        state = backend.open()
        try:
            wide, narrow = key(), key()
            first = await state.hit_many([Check(wide, 60, 5), Check(narrow, 60, 1)],
                                         now=T + 500.0)
            second = await state.hit_many([Check(wide, 60, 5), Check(narrow, 60, 1)],
                                          now=T + 501.0)
            return first, second, await state.used(wide, 60, now=T + 502.0)
        finally:
            await state.close()
    first, second, wide_used = run(go())
    assert [h.allowed for h in first] == [True, True]
    assert [h.allowed for h in second] == [True, False]
    assert wide_used == 1  # the refused request did not count against the wide policy


def test_add_used_and_zero_amount_checks(backend):
    async def go():
        state = backend.open()
        try:
            k = key()
            out = [await state.hit(k, 3600, 100, amount=0, now=T + 10.0)]
            assert await state.add(k, 3600, 60.5, now=T + 11.0)
            out.append(await state.hit(k, 3600, 100, amount=0, now=T + 12.0))
            assert await state.add(k, 3600, 39.5, now=T + 13.0)
            out.append(await state.hit(k, 3600, 100, amount=0, now=T + 14.0))
            assert not await state.add(k, 3600, 0, now=T + 15.0)  # nothing to add
            used_now = await state.used(k, 3600, now=T + 16.0)
            used_later = await state.used(k, 3600, now=T + 11.0 + 3600.5)
            return out, used_now, used_later
        finally:
            await state.close()
    checks, used_now, used_later = run(go())
    assert [c.allowed for c in checks] == [True, True, False]  # refused once used ≥ quota
    assert [c.used for c in checks] == [0, 60.5, 100]
    assert used_now == 100
    assert used_later == 39.5  # the first charge slid out


def test_exact_under_concurrency_in_one_process(backend):
    async def go():
        # Fail closed with time to spare: on a loaded machine a call past the 1 s timeout
        # would fail open (allowed, usage unknown) and hide what this measures.
        state = backend.open(fail_open=False, redis_timeout_s=15.0)
        try:
            k = key()
            hits = await asyncio.gather(*(state.hit(k, 60, 5) for _ in range(40)))
            return sum(h.allowed for h in hits), await state.used(k, 60)
        finally:
            await state.close()
    assert run(go()) == (5, 5)


def test_exact_across_two_processes(backend):
    # 2 processes x 20 concurrent hits against a quota of 5: exactly 5 get through.
    args = {"key": key(), "window_s": 60, "quota": 5}
    assert allowed_across_processes(backend, "hit", args) == 5

    async def used():
        state = backend.open()
        try:
            return await state.used(args["key"], 60)
        finally:
            await state.close()
    assert run(used()) == 5


def test_counters_are_independent(backend):
    async def go():
        state = backend.open()
        try:
            a, b = key(), key()
            await state.hit(a, 60, 1)
            return (await state.hit(a, 60, 1)).allowed, (await state.hit(b, 60, 1)).allowed
        finally:
            await state.close()
    assert run(go()) == (False, True)


def test_open_state_picks_the_backend(backend):
    from heliograph.state.redis_state import RedisState
    from heliograph.state.sql_state import SqlState

    async def go():
        if backend.kind == "redis":
            settings = Settings(database_url="sqlite:///unused.db", redis_url=backend.url)
            expected = RedisState
        else:
            settings = Settings(database_url=backend.url)
            expected = SqlState
        state = open_state(settings)
        try:
            assert isinstance(state, expected)
            assert state.fail_open is True
            return (await state.hit(key(), 60, 1)).allowed
        finally:
            await state.close()
    assert run(go()) is True


def test_sql_sweep_deletes_expired_rows(tmp_path):
    from heliograph.state.sql_state import SqlState

    async def go():
        state = SqlState(f"sqlite:///{tmp_path / 'sweep.db'}")
        try:
            await state.cache_set("gone", b"v", 0.1)
            await state.add("old", 1, 5, now=time.time() - 10)
            await asyncio.sleep(0.2)
            state._next_sweep = 0  # due now
            await state.cache_get("anything")
            with state._store._transaction(write=False) as cur:
                return (cur.execute("SELECT COUNT(*) FROM state_cache").fetchone()[0],
                        cur.execute("SELECT COUNT(*) FROM state_events").fetchone()[0])
        finally:
            await state.close()
    assert run(go()) == (0, 0)
