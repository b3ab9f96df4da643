"""RedisState: shared state in Redis, for several replicas (redis.asyncio).

Cache entries are plain strings with a PX expiry.

A rate counter must stay exact (requests, tokens and cents all count to the unit) while
each check costs O(log n) however many events the window holds: summing every event on
each check made a check take a second at 1M events, which blocked Redis for everyone. So a
counter is two keys:
  - `<key>` a sorted set of events scored by time; each member is
    "<sequence, 16 digits>|<sum of all amounts added before this one>";
  - `<key>:n` a hash with `total` (the sum of all amounts ever added) and `seq`.
The window's usage is then `total` minus the prefix sum stored in the oldest live event,
found with one ZRANGEBYSCORE ... LIMIT 0 1. Events are stored at max(now, newest event's
time), so insertion order is time order (a replica whose clock lags does not slip an
event in before ones already counted), and ties sort by the zero-padded sequence.
Expired events are trimmed at most TRIM_BATCH per call (the sum never depends on them),
so even a million events expiring at once cost each call bounded work.

The check-and-add over all of a request's counters is one Lua script, which Redis runs
atomically, so every replica sees the same count. Both keys expire window_s after their
newest event, so idle counters cost no memory.

Timeouts are short and the client does not retry: when Redis is down a request should
notice within a second, and SharedState then stops asking for RETRY_AFTER_S.
"""

from __future__ import annotations

from collections.abc import Sequence

from heliograph.state.base import Check, RateHit, SharedState, reset_after

TRIM_BATCH = 100

# Shared by both scripts: usage(key, now, window) → used, oldest live event time or nil;
# record(key, now, window, amount) adds one event. %.17g everywhere: Lua's default
# number-to-string keeps 14 digits, too few for a timestamp or a running total.
_COUNTER_FUNCTIONS = """
local function usage(key, now, window)
  local cutoff = now - window
  local expired = redis.call('ZCOUNT', key, '-inf', string.format('%.17g', cutoff))
  if expired > 0 then
    redis.call('ZREMRANGEBYRANK', key, 0, math.min(expired, TRIM_BATCH) - 1)
  end
  local first = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%.17g', cutoff),
                           '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first == 0 then return 0, nil end
  local before = tonumber(string.match(first[1], '|(.*)$'))
  local total = tonumber(redis.call('HGET', key .. ':n', 'total') or '0')
  return total - before, tonumber(first[2])
end

local function record(key, now, window, amount)
  local meta = key .. ':n'
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local at = now
  if #newest > 0 and tonumber(newest[2]) > at then at = tonumber(newest[2]) end
  local total = tonumber(redis.call('HGET', meta, 'total') or '0')
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', key, string.format('%.17g', at),
             string.format('%016d', seq) .. '|' .. string.format('%.17g', total))
  redis.call('HSET', meta, 'total', string.format('%.17g', total + amount))
  -- Both keys outlive the newest event by the window, and not longer.
  local ttl = math.ceil((at - now + window) * 1000)
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', meta, ttl)
  return at
end
""".replace("TRIM_BATCH", str(TRIM_BATCH))

# KEYS: one counter per check. ARGV: now, then (window, quota, amount) per key.
# Returns, per key: {allowed 0/1, used as text, oldest event time as text or ""}; amounts
# are added only if every check allows. Numbers travel as text because Redis truncates
# Lua numbers to integers in replies.
_HIT_MANY = _COUNTER_FUNCTIONS + """
local now = tonumber(ARGV[1])
local used, oldest, ok = {}, {}, {}
local all_ok = true
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 3
  local quota = tonumber(ARGV[base + 2])
  local amount = tonumber(ARGV[base + 3])
  used[i], oldest[i] = usage(key, now, tonumber(ARGV[base + 1]))
  ok[i] = used[i] < quota and used[i] + amount <= quota  -- base.allows
  if not ok[i] then all_ok = false end
end
local out = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 3
  local amount = tonumber(ARGV[base + 3])
  if all_ok and amount > 0 then
    local at = record(key, now, tonumber(ARGV[base + 1]), amount)
    used[i] = used[i] + amount
    if oldest[i] == nil then oldest[i] = at end
  end
  out[i] = {ok[i] and 1 or 0, string.format('%.17g', used[i]),
            oldest[i] and string.format('%.17g', oldest[i]) or ''}
end
return out
"""

# KEYS: the counter. ARGV: now, window, amount. Adds unconditionally.
_ADD = _COUNTER_FUNCTIONS + """
record(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""


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
        self._add_script = self._client.register_script(_ADD)

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
            args += [repr(float(c.window_s)), repr(float(c.quota)), repr(float(c.amount))]
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
        await self._add_script(keys=[self._rate_key(key)],
                               args=[repr(float(now)), repr(float(window_s)),
                                     repr(float(amount))])

    def _total_key(self, key: str) -> str:
        return f"{self.prefix}t:{key}"

    async def _add_total(self, key: str, amount: float, expires_at: float) -> None:
        pipe = self._client.pipeline(transaction=True)  # MULTI: add and expiry together
        pipe.incrbyfloat(self._total_key(key), amount)
        pipe.expireat(self._total_key(key), int(expires_at) + 1)
        await pipe.execute()

    async def _totals(self, keys: Sequence[str], now: float) -> list[float]:
        values = await self._client.mget([self._total_key(key) for key in keys])
        return [float(v) if v is not None else 0.0 for v in values]

    async def close(self) -> None:
        try:
            # The installed types-redis 4.6 stubs predate redis 5's aclose (redis>=5 ships
            # its own types, where it exists: hence unused-ignore for that setup).
            await self._client.aclose()  # type: ignore[attr-defined, unused-ignore]
        except self.outage_errors:
            pass

