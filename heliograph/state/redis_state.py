"""RedisState: shared state in Redis, for several replicas (redis.asyncio).

Cache entries are plain strings with a PX expiry. A counter is a sorted set of events
scored by time, each member "<amount>|<unique id>", so the window slides exactly; the
check-and-add over all of a request's counters is one Lua script, which Redis runs
atomically, so every replica sees the same count. Counter keys expire window_s after
their newest event, so idle counters cost no memory.

Timeouts are short and the client does not retry: when Redis is down a request should
notice within a second, and SharedState then stops asking for RETRY_AFTER_S.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from heliograph.state.base import Check, RateHit, SharedState, reset_after

# KEYS: one sorted set per check. ARGV: now, then (window, quota, amount, member) per key.
# Returns, per key: {allowed 0/1, used as text, oldest event time as text or ""}; amounts
# are added only if every check allows. Numbers travel as text because Redis truncates
# Lua numbers to integers in replies.
_HIT_MANY = """
local now = tonumber(ARGV[1])
local used, oldest, ok = {}, {}, {}
local all_ok = true
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local window = tonumber(ARGV[base + 1])
  local quota = tonumber(ARGV[base + 2])
  local amount = tonumber(ARGV[base + 3])
  -- %.17g: Lua's default number-to-string keeps 14 digits, too few for a timestamp.
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now - window))
  local sum = 0
  local items = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for j = 1, #items, 2 do
    sum = sum + tonumber(string.match(items[j], '^[^|]+'))
  end
  used[i] = sum
  if #items > 0 then oldest[i] = tonumber(items[2]) end
  ok[i] = sum < quota and sum + amount <= quota  -- base.allows
  if not ok[i] then all_ok = false end
end
local out = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local window = tonumber(ARGV[base + 1])
  local amount = tonumber(ARGV[base + 3])
  if all_ok and amount > 0 then
    redis.call('ZADD', key, ARGV[1], ARGV[base + 4])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    used[i] = used[i] + amount
    if oldest[i] == nil then oldest[i] = now end
  end
  out[i] = {ok[i] and 1 or 0, string.format('%.17g', used[i]),
            oldest[i] and string.format('%.17g', oldest[i]) or ''}
end
return out
"""


def _member(amount: float) -> str:
    return f"{float(amount)!r}|{uuid.uuid4().hex}"


class RedisState(SharedState):
    backend = "redis"

    def __init__(self, redis_url: str, fail_open: bool = True, prefix: str = "heliograph:",
                 connect_timeout_s: float = 0.5, timeout_s: float = 1.0) -> None:
        super().__init__(fail_open)
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError, TimeoutError

        self.prefix = prefix
        self._client = aioredis.from_url(
            redis_url, socket_connect_timeout=connect_timeout_s, socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0))
        # Not RedisError as a whole: a script or protocol error is a bug and must show.
        self.outage_errors = (ConnectionError, TimeoutError, OSError)
        self._hit_script = self._client.register_script(_HIT_MANY)

    def _cache_key(self, key: str) -> str:
        return f"{self.prefix}c:{key}"

    def _rate_key(self, key: str) -> str:
        return f"{self.prefix}r:{key}"

    async def _cache_get(self, key: str, now: float) -> bytes | None:
        return await self._client.get(self._cache_key(key))

    async def _cache_filled(self, keys: Sequence[str], now: float) -> list[bool]:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(self._cache_key(key))
        return [bool(n) for n in await pipe.execute()]

    async def _cache_set(self, key: str, value: bytes, ttl_s: float, only_if_absent: bool,
                         now: float) -> bool:
        stored = await self._client.set(self._cache_key(key), value,
                                        px=max(1, int(ttl_s * 1000)), nx=only_if_absent)
        return bool(stored)

    async def _hit_many(self, checks: Sequence[Check], now: float) -> list[RateHit]:
        args: list = [repr(float(now))]
        for c in checks:
            args += [repr(float(c.window_s)), repr(float(c.quota)), repr(float(c.amount)),
                     _member(c.amount)]
        rows = await self._hit_script(keys=[self._rate_key(c.key) for c in checks],
                                      args=args)
        hits = []
        for c, (ok, used, oldest) in zip(checks, rows):
            used = float(used)
            oldest = float(oldest) if oldest else None
            hits.append(RateHit(bool(ok), used, max(0.0, float(c.quota) - used),
                                reset_after(oldest, c.window_s, now)))
        return hits

    async def _add(self, key: str, window_s: float, amount: float, now: float) -> None:
        rkey = self._rate_key(key)
        pipe = self._client.pipeline(transaction=True)
        pipe.zadd(rkey, {_member(amount): now})
        pipe.pexpire(rkey, max(1, int(window_s * 1000)))
        await pipe.execute()

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except self.outage_errors:
            pass

