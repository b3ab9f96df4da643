"""Gateway-side rate limits (Helicone-RateLimit-Policy), over SharedState.

Grammar (Helicone's): `quota;w=seconds[;u=request|cents|tokens][;s=user|<property>]`,
several policies separated by commas, e.g. `1000;w=3600;u=request;s=user, 500;w=60`.
  - quota: a number > 0. Requests are counted whole, so a request quota is a whole
    number; cents and tokens may be decimal (`0.5;w=60;u=cents`, as Helicone takes);
  - w: the sliding window in whole seconds, 1 … 31536000. Helicone insists on w ≥ 60;
    shorter windows are accepted here (handy for bursts and for tests);
  - u: request (default), cents (of the logged cost_usd) or tokens (logged total_tokens);
    the plurals `requests`, `cent`, `token` mean the same;
  - s: `user` (the record's user_id: Helicone-User-Id, else the body's `user`) or a
    property name (Helicone-Property-<Name>, case-insensitive); absent = one counter for
    the whole organization.
Spaces, a trailing `;` and empty parts (`;;`, a trailing `,`) are ignored, as Helicone
ignores them. At most MAX_POLICIES policies. Anything whose meaning is unclear (an unknown
parameter or unit, a missing window, a parameter twice) is a 400 naming the part that is
wrong: guessing would enforce a limit other than the one asked for.

The response's Helicone-RateLimit-Policy is Helicone's normalised form of the policy that
constrains the request most, `quota;w=seconds;u=unit` (Policy.echo).

Decisions:
  - A request without the segment's value (s=user and no user id, or s=<property> and no
    such property) is counted in one shared "anonymous" counter for that policy, so a
    limit cannot be escaped by leaving the header out.
  - request policies are check-and-add, atomically, over all of a request's policies at
    once: a request refused by any policy consumes nothing from the others.
  - cents and tokens are known only after the answer, so check() refuses once the window
    already holds ≥ quota, and settle() adds the cost/tokens after the response. One
    request may therefore overshoot the quota; the next one is refused.
  - Counters are per organization and per policy (quota, window, unit, segment), so two
    spellings of one policy share a counter and different policies never do.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from heliograph.asgi import is_whole_number
from heliograph.errors import BadRequest, RateLimited
from heliograph.proxy.background import BackgroundTasks
from heliograph.state.base import Check, RateHit

log = logging.getLogger("heliograph.ratelimit")

MAX_POLICIES = 10
MAX_WINDOW_S = 365 * 24 * 3600
UNITS = ("request", "cents", "tokens")
UNIT_SPELLINGS = {"request": "request", "requests": "request", "cents": "cents",
                  "cent": "cents", "tokens": "tokens", "token": "tokens"}
MAX_QUOTA = 10**15
_HEADER = "Helicone-RateLimit-Policy"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # what a header name may hold
_ANONYMOUS = ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _quota_text(quota: float) -> str:
    return str(int(quota)) if float(quota).is_integer() else repr(float(quota))


@dataclass(frozen=True)
class Policy:
    quota: float
    window_s: int
    unit: str = "request"
    segment: str | None = None  # None: organization-wide; "user"; or a property name
    text: str = ""              # as the caller wrote it, for Helicone-RateLimit-Policy

    @property
    def canonical(self) -> str:
        s = f";s={self.segment}" if self.segment else ""
        return f"{self.echo}{s}"

    @property
    def echo(self) -> str:
        """Helicone's normalised Helicone-RateLimit-Policy response value."""
        return f"{_quota_text(self.quota)};w={self.window_s};u={self.unit}"

    def describe(self) -> str:
        unit = "requests" if self.unit == "request" else self.unit
        if self.segment is None:
            per = "for the organization"
        elif self.segment == "user":
            per = "per user"
        else:
            per = f"per value of property '{self.segment}'"
        return f"{_quota_text(self.quota)} {unit} per {self.window_s} s {per}"


def _bad(message: str) -> BadRequest:
    return BadRequest(f"{_HEADER}: {message}", code="invalid_header")


def _whole(value: str, what: str, policy: str, high: int) -> int:
    if not is_whole_number(value) or not 1 <= int(value) <= high:
        raise _bad(f"{what} must be a whole number from 1 to {high}, got {value!r} "
                   f"in policy {policy!r}")
    return int(value)


def _quota(value: str, unit: str, policy: str) -> float:
    if unit == "request":
        return _whole(value, "a request quota", policy, MAX_QUOTA)
    try:
        quota = float(value)
    except ValueError:
        quota = math.nan
    if not 0 < quota <= MAX_QUOTA:  # NaN fails too
        raise _bad(f"the quota must be a number above 0, got {value!r} in policy {policy!r}")
    return quota


def _parse_one(text: str) -> Policy:
    quota_text, *params = [part.strip() for part in text.split(";")]
    if not quota_text:
        raise _bad(f"policy {text!r} must start with a quota, as in '100;w=60'")
    found: dict[str, str] = {}
    for param in params:
        name, eq, value = param.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not param:
            continue  # `10;w=60;` — Helicone ignores empty parts
        if not eq:
            raise _bad(f"{param!r} is not name=value in policy {text!r}")
        if name not in ("w", "u", "s"):
            raise _bad(f"unknown parameter {name!r} in policy {text!r} "
                       "(expected w=, u=, s=)")
        if name in found:
            raise _bad(f"{name}= given twice in policy {text!r}")
        if not value:
            raise _bad(f"{name}= needs a value in policy {text!r}")
        found[name] = value
    if "w" not in found:
        raise _bad(f"policy {text!r} needs a window, as in '{quota_text};w=60' (seconds)")
    window = _whole(found["w"], "the window w", text, MAX_WINDOW_S)
    unit = UNIT_SPELLINGS.get(found.get("u", "request").lower())
    if unit is None:
        raise _bad(f"unit u={found['u']!r} in policy {text!r} must be one of "
                   f"{', '.join(UNITS)}")
    quota = _quota(quota_text, unit, text)
    segment = found.get("s")
    if segment is not None:
        if not _TOKEN.match(segment):
            raise _bad(f"segment s={segment!r} in policy {text!r} must be 'user' or a "
                       "property name")
        segment = segment.lower()
    return Policy(quota, window, unit, segment, text)


@lru_cache(maxsize=512)
def _parse(header: str) -> tuple[Policy, ...]:
    # Empty items (`a,,b`, a trailing `,`) and empty parts are ignored, as Helicone does.
    items = [item.strip() for item in header.split(",") if item.strip(" ;")]
    if not items:
        raise _bad("empty header: give at least one policy, as in '100;w=60'")
    if len(items) > MAX_POLICIES:
        raise _bad(f"at most {MAX_POLICIES} policies, got {len(items)}")
    return tuple(_parse_one(item) for item in items)


def parse_policies(header: str | None) -> list[Policy]:
    """The policies in a Helicone-RateLimit-Policy value ([] for None); BadRequest (400)
    naming the bad part otherwise. Cached: the pipeline and check() both call it."""
    if header is None:
        return []
    return list(_parse(header.strip()))


def segment_value(policy: Policy, record: Mapping[str, Any]) -> str | None:
    if policy.segment is None:
        return None
    if policy.segment == "user":
        return record.get("user_id") or _ANONYMOUS
    properties = {str(k).lower(): v for k, v in (record.get("properties") or {}).items()}
    value = properties.get(policy.segment)
    return _ANONYMOUS if value is None else str(value)


def counter_key(organization: str, policy: Policy, record: Mapping[str, Any]) -> str:
    material = orjson.dumps([organization, policy.canonical, segment_value(policy, record)])
    return "rl:" + hashlib.sha256(material).hexdigest()[:40]


def _headers(policy: Policy, hit: RateHit) -> dict[str, str]:
    headers = {
        "helicone-ratelimit-limit": _quota_text(policy.quota),
        "helicone-ratelimit-remaining": _number(max(0.0, hit.remaining)),
        "helicone-ratelimit-policy": policy.echo,
        "helicone-ratelimit-reset": str(math.ceil(hit.reset_s)),
    }
    if hit.degraded:
        headers["helicone-ratelimit-status"] = "degraded"
    return headers


class RateLimiter:
    def __init__(self, state) -> None:
        self.state = state
        self._background = BackgroundTasks(log)  # settles after the answer

    async def check(self, principal, options, record: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
        """Count this request against its policies. Raises RateLimited (429) when one is
        exhausted; else returns the response headers of the most constrained policy."""
        policies = parse_policies(options.ratelimit_policy)
        if not policies:
            return []
        org = principal.organization
        checks = [Check(counter_key(org, p, record), p.window_s, p.quota,
                        1 if p.unit == "request" else 0) for p in policies]
        hits = await self.state.hit_many(checks)
        for policy, hit in zip(policies, hits):
            if not hit.allowed:
                raise self._refusal(policy, hit)
        policy, hit = min(zip(policies, hits),
                          key=lambda ph: (ph[1].remaining / ph[0].quota, ph[1].remaining))
        return [(k.encode(), v.encode("latin-1"))
                for k, v in _headers(policy, hit).items()]

    @staticmethod
    def _refusal(policy: Policy, hit: RateHit) -> RateLimited:
        headers = _headers(policy, hit)
        reset = headers["helicone-ratelimit-reset"]
        headers["x-helicone-error"] = "rate_limited"
        headers["retry-after"] = reset
        if hit.degraded:
            message = (f"rate limit state is unavailable and limits fail closed: policy "
                       f"{policy.text or policy.canonical!r} ({policy.describe()}) could "
                       "not be checked")
        else:
            message = (f"rate limit exceeded: policy {policy.text or policy.canonical!r} "
                       f"({policy.describe()}); retry in {reset} s")
        return RateLimited(message, headers=headers)

    def _charges(self, principal, options, record: Mapping[str, Any]) -> list[tuple[str, int, float]]:
        try:
            policies = parse_policies(options.ratelimit_policy)
        except BadRequest:
            return []  # already refused with a 400 before reaching a provider
        charges = []
        for policy in policies:
            if policy.unit == "cents":
                cost = record.get("cost_usd")
                amount = None if cost is None else float(cost) * 100
            elif policy.unit == "tokens":
                amount = record.get("total_tokens")
            else:
                continue
            if amount:
                charges.append((counter_key(principal.organization, policy, record),
                                policy.window_s, float(amount)))
        return charges

    async def settle_now(self, principal, options, record: Mapping[str, Any]) -> None:
        """Add the answered request's cost (cents) and tokens to its cents/tokens
        policies. Unknown cost or tokens (None) add nothing."""
        for key, window_s, amount in self._charges(principal, options, record):
            await self.state.add(key, window_s, amount)

    def settle(self, principal, options, record: Mapping[str, Any]) -> None:
        """settle_now() in a background task, after the response; errors are logged."""
        if not self._charges(principal, options, record):
            return
        self._background.start(self.settle_now(principal, options, dict(record)),
                               "settling rate-limit usage")

    async def drain(self) -> None:
        """Wait for background settles (shutdown, tests)."""
        await self._background.drain()
