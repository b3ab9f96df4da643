"""Redis unreachable (a closed port): nothing raises, lookups miss, stores are skipped,
limits fail open (or closed when so configured), and the log is not flooded."""

import logging
import time

import pytest
from state_backends import closed_port_url, run

from heliograph.errors import RateLimited
from heliograph.proxy.auth import Principal
from heliograph.proxy.cache import CachedAnswer, ResponseCache
from heliograph.proxy.headers import RequestOptions
from heliograph.proxy.ratelimit import RateLimiter
from heliograph.state import Check
from heliograph.state.redis_state import RedisState


def test_every_operation_degrades_without_raising(caplog):
    async def go():
        state = RedisState(closed_port_url())
        try:
            started = time.monotonic()
            out = {
                "get": await state.cache_get("k"),
                "filled": await state.cache_filled(["a", "b"]),
                "set": await state.cache_set("k", b"v", 60),
                "hit": await state.hit("r", 60, 5),
                "many": await state.hit_many([Check("r", 60, 5), Check("s", 60, 1)]),
                "add": await state.add("r", 60, 3),
                "used": await state.used("r", 60),
                "healthy": state.healthy,
            }
            out["elapsed"] = time.monotonic() - started
            return out
        finally:
            await state.close()
    with caplog.at_level(logging.WARNING, logger="heliograph.state"):
        out = run(go())
    assert out["get"] is None
    assert out["filled"] == [False, False]
    assert out["set"] is False
    assert out["hit"].allowed and out["hit"].degraded and out["hit"].remaining == 5
    assert all(h.allowed and h.degraded for h in out["many"])
    assert out["add"] is False
    assert out["used"] is None
    assert out["healthy"] is False
    assert out["elapsed"] < 3
    warnings = [r for r in caplog.records if r.name == "heliograph.state"]
    assert len(warnings) == 1  # the first failure, not one per operation
    assert "unreachable" in warnings[0].getMessage()
    assert "fail open" in warnings[0].getMessage()


def test_fail_closed_refuses():
    async def go():
        state = RedisState(closed_port_url(), fail_open=False)
        try:
            return await state.hit("r", 60, 5)
        finally:
            await state.close()
    hit = run(go())
    assert not hit.allowed and hit.degraded and hit.remaining == 0


def test_cache_over_a_dead_redis_misses_and_skips_stores():
    options = RequestOptions(cache_enabled=True, cache_bucket_max=2)
    body = {"model": "m", "messages": []}

    async def go():
        cache = ResponseCache(RedisState(closed_port_url()))
        try:
            answer = CachedAnswer(200, {}, body=b"{}")
            looked = await cache.lookup("org", "/v1/chat/completions", body, options)
            stored = await cache.store("org", "/v1/chat/completions", body, options, answer)
            cache.store_later("org", "/v1/chat/completions", body, options, answer)
            await cache.drain()
            return looked, stored
        finally:
            await cache.state.close()
    assert run(go()) == (None, None)


@pytest.mark.parametrize("fail_open", [True, False])
def test_limiter_over_a_dead_redis(fail_open):
    options = RequestOptions(ratelimit_policy="5;w=60;s=user")
    principal = Principal("key1", "org", False)

    async def go():
        limiter = RateLimiter(RedisState(closed_port_url(), fail_open=fail_open))
        try:
            return await limiter.check(principal, options, {"user_id": "u"})
        finally:
            await limiter.state.close()
    if fail_open:
        headers = dict(run(go()))
        assert headers[b"helicone-ratelimit-status"] == b"degraded"
        assert headers[b"helicone-ratelimit-remaining"] == b"5"
    else:
        with pytest.raises(RateLimited) as refused:
            run(go())
        assert refused.value.status == 429
        assert "unavailable" in refused.value.message
        assert refused.value.headers["x-helicone-error"] == "rate_limited"
        assert refused.value.headers["helicone-ratelimit-status"] == "degraded"
