"""Realistic request history, built record by record like the gateway builds them.

Every record is built exactly like the gateway builds one (records.new_record, then the
fields proxy/exchange.py, proxy/cached.py and proxy/routing.py fill in) and priced by the
same functions (costs.usage_from_openai + costs.cost_of at the request's time), so the query
API shows it like real traffic. Speed: the random choices come from precomputed tables and
the bodies are shared templates with a new envelope (load.py inserts them).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from heliograph import costs
from heliograph.demo import templates as T
from heliograph.records import new_record, utc_iso

BATCH = 5000
DAY = 86400.0
# Per session: a run of 100-500 requests (about one in 10,000 sessions).
LONG_SESSION_CHANCE = 1e-4


@dataclass
class Summary:
    records: int = 0
    users: set[str] = field(default_factory=set)
    sessions: int = 0
    errors: int = 0
    cache_hits: int = 0
    cost_usd: float = 0.0     # sum over cost_known records, like /api/v1/metrics
    seconds: float = 0.0


def _activity(ts: float) -> float:
    """Relative traffic at a UTC instant: a working-day curve peaking mid-afternoon, a
    quiet night, and weekends at a quarter of a weekday."""
    hour = (ts % DAY) / 3600.0
    weekday = int((ts // DAY + 3) % 7)  # 1970-01-01 was a Thursday; 0 = Monday
    level = 0.08 + math.exp(-((hour - 14.0) / 4.0) ** 2)
    return level * (0.25 if weekday >= 5 else 1.0)


Item = TypeVar("Item")


class _Picker(Generic[Item]):
    """Weighted choice by bisecting precomputed cumulative weights (one random() call)."""

    def __init__(self, items: Sequence[Item], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def __call__(self, rnd: Callable[[], float]) -> Item:
        return self.items[bisect.bisect_right(self.cum, rnd() * self.total)]


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from the seeded generator, so --seed repeats the ids too
    (session ids: a caller's own, random in the wild)."""
    v = rng.getrandbits(128)
    v = (v & ~(0xF << 76)) | (0x4 << 76)   # version 4
    v = (v & ~(0x3 << 62)) | (0x2 << 62)   # RFC 4122 variant
    x = f"{v:032x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _uuid7(rng: random.Random, at: float) -> str:
    """A version-7 UUID for a record made at `at` (Unix seconds), as the gateway makes
    them (proxy/exchange.fast_uuid7), so a demo fill's id indexes grow as a live log's
    do; the random bits from the seeded generator (the same draw as _uuid's, so --seed
    repeats everything else too)."""
    v = rng.getrandbits(128) & ((1 << 80) - 1)   # the 80 bits after the timestamp
    v |= int(at * 1000) << 80
    v = (v & ~(0xF << 76)) | (0x7 << 76)   # version 7
    v = (v & ~(0x3 << 62)) | (0x2 << 62)   # RFC 9562 variant
    x = f"{v:032x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class _Clock:
    """records.utc_iso for random instants: the date part cached per day (utc_iso's own
    cache only helps when consecutive timestamps share a second)."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._minutes: dict[int, _dt.datetime] = {}

    def minute(self, ts: float) -> _dt.datetime:
        """The instant to price at, to the minute (prices change by date or hour at most)."""
        minute = int(ts // 60)
        when = self._minutes.get(minute)
        if when is None:
            when = self._minutes[minute] = _dt.datetime.fromtimestamp(minute * 60, _dt.UTC)
        return when

    def iso(self, ts: float) -> str:
        seconds = int(ts)
        day, second = divmod(seconds, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = utc_iso(day * 86400.0)[:11]  # "YYYY-MM-DDT"
        hour, rest = divmod(second, 3600)
        return (f"{prefix}{hour:02d}:{rest // 60:02d}:{rest % 60:02d}."
                f"{int((ts - seconds) * 1_000_000):06d}Z")


class HistoryGenerator:
    def __init__(self, records: int, days: float, seed: int | None, until: float,
                 organization: str = "default", key_id: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.total = records
        self.until = until
        self.start = until - days * DAY
        self.organization = organization
        self.key_id = key_id
        n_users = max(20, min(5000, records // 100))
        self.users = T.user_ids(n_users, self.rng)
        # Zipf-like (s = 1.1): the first users make most requests, the tail only a few.
        self.pick_user = _Picker(self.users, [1.0 / (i + 1) ** 1.1 for i in range(n_users)])
        self.pick_model = _Picker(T.MODELS, [m[2] for m in T.MODELS])
        self.pick_workflow = _Picker(T.WORKFLOWS, [w[1] for w in T.WORKFLOWS])
        self.pick_env = _Picker([v for v, _ in T.ENVIRONMENTS], [w for _, w in T.ENVIRONMENTS])
        self.pick_feature = _Picker([v for v, _ in T.FEATURES], [w for _, w in T.FEATURES])
        self.pick_error = _Picker(T.ERRORS, [e[1] for e in T.ERRORS])
        self.bodies = T.Bodies(self.rng)
        self._hour = self.start
        self.summary = Summary()
        self.clock = _Clock()
        # Providers' x-ratelimit-* values, drawn once: per record only a pick.
        # (sorted: set order varies between runs, and --seed must repeat everything)
        self.ratelimits = {(p, ok): [self._ratelimit(p, not ok) for _ in range(64)]
                           for p in sorted({m[0] for m in T.MODELS}) for ok in (True, False)}

    # -- time -------------------------------------------------------------------------
    def _hour_counts(self) -> list[tuple[float, int]]:
        """(start, records) for each hour of the span: the daily/weekly curve with a little
        noise, rounded so the counts add up to exactly `self.total`."""
        rng, hours = self.rng, max(1, math.ceil((self.until - self.start) / 3600.0))
        starts = [self.start + h * 3600.0 for h in range(hours)]
        weights = [_activity(t + 1800.0) * (0.85 + 0.3 * rng.random()) for t in starts]
        scale = self.total / sum(weights)
        exact = [w * scale for w in weights]
        counts = [int(x) for x in exact]
        by_remainder = sorted(range(hours), key=lambda h: counts[h] - exact[h])
        for h in by_remainder[:self.total - sum(counts)]:
            counts[h] += 1
        return list(zip(starts, counts, strict=True))

    def _instant(self) -> float:
        """A moment in the hour being generated (batches() walks the span hour by hour)."""
        return min(self._hour + self.rng.random() * 3600.0, self.until)

    # -- records ----------------------------------------------------------------------
    def batches(self, size: int = BATCH):
        """Lists of records, `self.total` in all, in time order as a gateway writes them:
        hour by hour, each hour's records sorted (a session's later steps may spill into
        the next hour). In order, a batch touches few rollup buckets and appends to the
        time index, which makes a large fill several times faster than random instants."""
        made = goal = 0
        pending: list[dict] = []
        for hour, count in self._hour_counts():
            self._hour = hour
            goal += count  # cumulative: a session that overshot one hour shortens the next
            while made < goal:
                unit = self._unit(self.total - made)
                pending += unit
                made += len(unit)
            pending.sort(key=lambda rec: rec["created_at"])
            while len(pending) >= size:
                yield pending[:size]
                del pending[:size]
        if pending:
            yield pending

    def _unit(self, room: int) -> list[dict]:
        """One standalone request, or one session of several (a workflow's steps)."""
        rng = self.rng
        user = self.pick_user(rng.random) if rng.random() < 0.92 else None
        env = self.pick_env(rng.random)
        ts = self._instant()
        if rng.random() < 0.35 or room < 2:
            props = {"environment": env, "feature": self.pick_feature(rng.random)}
            return [self._record(ts, user, props, None, None, None)]
        name, _, paths, titles = self.pick_workflow(rng.random)
        if rng.random() < LONG_SESSION_CHANCE and room >= 100:
            # An agent left looping: hundreds of steps (the 500-request session).
            middle = paths[1:-1] or paths
            steps = [paths[0], *(middle[i % len(middle)] for i in range(rng.randint(98, 498))),
                     paths[-1]]
        else:
            steps = list(paths[:rng.randint(2, len(paths))])[:room]
        session_id = _uuid(rng)
        title = rng.choice(titles).format(topic=rng.choice(T.TOPICS), n=rng.randint(1000, 99999))
        props = {"environment": env, "workflow": name}
        out = []
        for path in steps:
            out.append(self._record(ts, user, props, session_id, path, title))
            ts += 0.5 + rng.random() * 20.0
        self.summary.sessions += 1
        return out

    def _record(self, ts: float, user: str | None, props: dict, session_id: str | None,
                session_path: str | None, session_name: str | None) -> dict:
        rng, s = self.rng, self.summary
        provider, model, _, wire, rl_headers = self.pick_model(rng.random)
        if ts > self.until:
            ts = self.until - rng.random()
        rid = _uuid7(rng, ts)
        path = "/v1/messages" if wire == "anthropic" and rng.random() < 0.6 \
            else "/v1/chat/completions"
        # Filled field by field as the pipeline fills a live one; a plain dict for that.
        rec: dict[str, Any] = dict(new_record(rid, 0.0, path))
        rec["created_at"] = self.clock.iso(ts)
        rec["organization"] = self.organization
        rec["key_id"] = self.key_id
        rec["user_id"] = user
        rec["properties"] = dict(props)
        rec["session_id"], rec["session_path"], rec["session_name"] = \
            session_id, session_path, session_name
        rec["model"] = model
        stream = rng.random() < 0.3
        body_index = rng.randrange(1 << 30)
        cache_enabled = rng.random() < 0.25
        if cache_enabled:
            # A cached prompt is more often a popular one, so some entries are hit far
            # more than others (as the Cache page's most-hit entries show).
            body_index = _popular(body_index)
            rec["cache"] = "miss"
            rec["cache_entry"] = _cache_entry(rec, stream, body_index)
        if path == "/v1/messages":
            rec["request"] = self.bodies.anthropic_request(body_index, model, stream)
        else:
            rec["request"] = self.bodies.openai_request(body_index, model, stream)
        if user is not None:
            s.users.add(user)
        s.records += 1

        roll = rng.random()
        if cache_enabled and roll < 0.3:
            self._cache_hit(rec, provider, model, body_index, stream, ts)
        elif roll > 0.955:
            self._failure(rec, provider, model, rl_headers)
        else:
            self._success(rec, provider, model, body_index, stream, ts, rl_headers)
        if rec["status"] >= 400:
            s.errors += 1
        elif rng.random() < 0.04:
            rec["feedback"] = rng.random() < 0.8
        if rec["status"] < 400 and rng.random() < 0.02:
            rec["scores"] = {"accuracy": round(rng.random(), 2),
                             "helpfulness": rng.randint(1, 5)}
        if rec["cost_known"]:
            s.cost_usd += rec["cost_usd"]
        return rec

    def _usage(self, model: str, cached: bool) -> dict:
        rng = self.rng
        prompt = int(rng.lognormvariate(6.8, 0.9)) + 20      # median ~900 tokens
        completion = int(rng.lognormvariate(5.3, 0.8)) + 5    # median ~200 tokens
        cached_tokens = (prompt // 1024) * 1024 if cached and prompt >= 1024 else 0
        reasoning = int(completion * (0.4 + rng.random() * 0.5)) if model.startswith("o") else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached_tokens},
                "completion_tokens_details": {"reasoning_tokens": reasoning}}

    def _price(self, rec: dict, usage_obj: dict, when: float) -> None:
        # As Exchange.set_usage, at the request's own time. The Usage is built directly
        # (usage_from_openai of our own dict gives the same, slower).
        usage = costs.Usage(usage_obj["prompt_tokens"], usage_obj["completion_tokens"],
                            usage_obj["prompt_tokens_details"]["cached_tokens"], 0,
                            usage_obj["completion_tokens_details"]["reasoning_tokens"])
        rec["prompt_tokens"] = usage.prompt_tokens
        rec["completion_tokens"] = usage.completion_tokens
        rec["total_tokens"] = usage.prompt_tokens + usage.completion_tokens
        rec["cached_tokens"] = usage.cached_tokens
        rec["cache_write_tokens"] = usage.cache_write_tokens
        rec["reasoning_tokens"] = usage.reasoning_tokens
        cost = costs.cost_of(rec["provider"] or "", rec["model_used"] or rec["model"] or "",
                             usage, at=self.clock.minute(when))
        rec["cost_usd"] = cost.usd
        rec["cost_known"] = cost.known

    def _response(self, rec: dict, body_index: int, model: str, usage: dict, stream: bool,
                  ts: float) -> None:
        if rec["path"] == "/v1/messages":
            rec["response"] = self.bodies.anthropic_response(body_index, rec["id"], model, usage)
        else:
            rec["response"] = self.bodies.openai_response(body_index, rec["id"], int(ts), model,
                                                          usage, stream)

    def _latency(self, usage: dict) -> float:
        # Time to first token plus generation at 40-120 tokens/s.
        rng = self.rng
        ttft = 150.0 + rng.lognormvariate(5.5, 0.6)
        return round(ttft + usage["completion_tokens"] * 1000.0 / rng.uniform(40, 120), 3)

    def _attempt(self, provider: str, model: str, status: int, latency: float,
                 error: str | None) -> dict:
        return {"model": model, "provider": provider, "status": status,
                "latency_ms": round(latency, 3), "error": error}

    def _ratelimit(self, provider: str, exhausted: bool) -> dict:
        """The ratelimit field as ratelimit_from() makes it from x-ratelimit-* headers."""
        rng = self.rng
        limit_req = 10000 if provider == "openai" else 14400
        limit_tok = 2000000 if provider == "openai" else 500000
        return {"limit_requests": str(limit_req),
                "remaining_requests": "0" if exhausted else str(rng.randint(limit_req // 2,
                                                                             limit_req - 1)),
                "reset_requests": f"{rng.randint(6, 900)}ms",
                "limit_tokens": str(limit_tok),
                "remaining_tokens": str(rng.randint(0, 2000) if exhausted
                                        else rng.randint(limit_tok // 3, limit_tok - 1)),
                "reset_tokens": f"{rng.randint(1, 60)}s",
                **({"retry_after": str(rng.randint(1, 20))} if exhausted else {})}

    def _success(self, rec: dict, provider: str, model: str, body_index: int, stream: bool,
                 ts: float, rl_headers: bool) -> None:
        rng = self.rng
        usage = self._usage(model, rng.random() < 0.3)
        latency = self._latency(usage)
        attempts = []
        index = 0
        served_provider, served_model = provider, model
        roll = rng.random()
        if roll < 0.03:  # a retried 429, then success
            attempts.append(self._attempt(provider, model, 429, rng.uniform(80, 400),
                                          T.ERRORS[0][2].format(model=model)))
            latency += attempts[0]["latency_ms"] + rng.uniform(500, 4000)
        elif roll < 0.045:  # the first model failed, a fallback answered
            attempts.append(self._attempt(provider, model, 500, rng.uniform(200, 3000),
                                          T.ERRORS[1][2]))
            latency += attempts[0]["latency_ms"]
            served_provider, served_model = T.FALLBACKS[provider]
            index = 1
        attempts.append(self._attempt(served_provider, served_model, 200, latency, None))
        rec["attempts"] = attempts
        rec["provider"], rec["model_used"], rec["fallback_index"] = \
            served_provider, served_model, index
        if rl_headers and index == 0:
            pool = self.ratelimits[served_provider, True]
            rec["ratelimit"] = pool[int(rng.random() * len(pool))]
        self._price(rec, usage, ts)
        self._response(rec, body_index, served_model, usage, stream, ts)
        rec["status"] = 200
        rec["latency_ms"] = round(latency + rng.uniform(1, 6), 3)
        if stream:
            rec["ttft_ms"] = round(attempts[-1]["latency_ms"] * rng.uniform(0.05, 0.3), 3)

    def _cache_hit(self, rec: dict, provider: str, model: str, body_index: int, stream: bool,
                   ts: float) -> None:
        # As proxy/cached.serve_hit: no attempt, priced as if called, cost moved to saved.
        rng = self.rng
        usage = self._usage(model, False)
        rec["cache"] = "hit"
        rec["provider"], rec["model_used"] = provider, model
        self._price(rec, usage, ts)
        if rec["cost_known"]:
            rec["cost_saved_usd"], rec["cost_usd"] = rec["cost_usd"], 0.0
        self._response(rec, body_index, model, usage, stream, ts)
        rec["status"] = 200
        rec["latency_ms"] = round(rng.uniform(1.5, 12.0), 3)
        if stream:
            rec["ttft_ms"] = round(rec["latency_ms"] * rng.uniform(0.3, 0.8), 3)
        self.summary.cache_hits += 1

    def _failure(self, rec: dict, provider: str, model: str, rl_headers: bool) -> None:
        rng = self.rng
        status, _, message = self.pick_error(rng.random)
        message = message.format(model=model)
        retried = status in (429, 500, 502) and rng.random() < 0.5
        tries = rng.randint(2, 4) if retried else 1
        attempts = [self._attempt(provider, model, status, rng.uniform(50, 2500), message)
                    for _ in range(tries)]
        rec["attempts"] = attempts
        rec["provider"], rec["model_used"], rec["fallback_index"] = provider, model, 0
        if status == 429:
            rec["ratelimit"] = self.ratelimits[provider, False][int(rng.random() * 64)] \
                if rl_headers else {"retry_after": str(1 + int(rng.random() * 20))}
        kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status,
                                                                            "server_error")
        rec["response"] = {"error": {"message": message, "type": kind, "param": None,
                                     "code": kind if status != 400 else "context_length_exceeded"}}
        rec["status"] = status
        rec["error"] = message
        rec["latency_ms"] = round(sum(a["latency_ms"] for a in attempts)
                                  + (tries - 1) * rng.uniform(300, 2000), 3)


def _popular(body_index: int) -> int:
    """A pool conversation, the first ones far more often (the square of a uniform draw),
    from the draw already made: no random number more, so a seed fills as before."""
    return int(T.POOL_SIZE * (body_index / (1 << 30)) ** 2)


def _cache_entry(rec: dict, stream: bool, body_index: int) -> str:
    """As proxy/cache.py entry_id: 16 hex digits naming what the key depends on."""
    material = (f"{rec['organization']}|{rec['key_id']}|{rec['path']}|{rec['model']}"
                f"|{stream}|{body_index % T.POOL_SIZE}")
    return hashlib.sha256(material.encode()).hexdigest()[:16]
