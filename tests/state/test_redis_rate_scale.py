"""A Redis rate counter's check costs the same at 100k events in the window as at 10:
summing every event per check once took 188 ms at 100k events and a second at 1M (the
client timed out, so the limit was not enforced, and Redis stalled for everyone)."""

import time
import uuid

import pytest
import redis
from state_backends import REDIS_URL, run

from heliograph.state.redis_state import _COUNTER_FUNCTIONS, RedisState

EVENTS = 100_000
CHUNK = 5_000  # events recorded per script call: keeps the shared Redis responsive

# Records ARGV[3] events of amount 1 at times ARGV[1] + i * ARGV[2] / ARGV[3] (the same
# record() every check uses, looped server-side: 100k round trips would take minutes).
_FILL = _COUNTER_FUNCTIONS + """
local start, span, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 0, n - 1 do record(KEYS[1], start + i * span / n, 3600, 1) end
return n
"""


@pytest.fixture
def prefix():
    if not REDIS_URL:
        pytest.skip("HELIOGRAPH_TEST_REDIS_URL not set: Redis state skipped")
    prefix = f"hgtest:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def _fill(prefix: str, key: str, start: float, span: float) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    fill = client.register_script(_FILL)
    per_chunk = span * CHUNK / EVENTS
    for i in range(EVENTS // CHUNK):
        fill(keys=[f"{prefix}r:{key}"], args=[repr(start + i * per_chunk), repr(per_chunk),
                                              CHUNK])
    client.close()


def _median_check_ms(prefix: str, key: str, now: float, quota: float) -> tuple[float, list]:
    async def go():
        state = RedisState(REDIS_URL, prefix=prefix, timeout_s=5.0)
        try:
            times, hits = [], []
            for i in range(15):
                began = time.perf_counter()
                hits.append(await state.hit(key, 3600, quota, amount=1, now=now + i * 1e-3))
                times.append((time.perf_counter() - began) * 1000)
            return sorted(times)[len(times) // 2], hits
        finally:
            await state.close()
    return run(go())


def test_a_check_over_100k_events_is_fast_and_exact(prefix):
    now = time.time()
    _fill(prefix, "busy", now - 1000, 900)  # 100k events between now-1000 and now-100
    median_ms, hits = _median_check_ms(prefix, "busy", now, EVENTS + 10)
    assert [h.used for h in hits[:3]] == [EVENTS + 1, EVENTS + 2, EVENTS + 3]
    assert sum(h.allowed for h in hits) == 10  # exact at the quota, even this full
    assert abs(hits[0].reset_s - (3600 - 1000)) < 1e-3  # the oldest event leaves first
    assert median_ms < 25, f"a check took {median_ms:.1f} ms at {EVENTS} events"


def test_a_window_of_100k_expired_events_drains_without_a_slow_check(prefix):
    now = time.time()
    _fill(prefix, "stale", now - 3600 - 500, 400)  # all left the window 100+ s ago
    median_ms, hits = _median_check_ms(prefix, "stale", now, 3)
    assert [h.used for h in hits[:4]] == [1, 2, 3, 3]
    assert [h.allowed for h in hits[:4]] == [True, True, True, False]
    assert median_ms < 25, f"a check took {median_ms:.1f} ms over {EVENTS} expired events"
