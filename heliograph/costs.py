"""Request cost in USD, priced from the price data bundled with `genai-prices`.

Only the data shipped inside the installed `genai-prices` wheel is used, through
heliograph/price_table.py's compact table of it: this module never starts
`genai_prices.UpdatePrices` nor reads a fetched snapshot (`set_custom_snapshot`), so our
prices do not change and nothing here touches the network. A serve worker reads the table
from the file `serve` wrote (price_table.PRICE_TABLE_ENV) and never imports genai-prices
or pydantic (~14 MB a process); anywhere else the table is built in-process on first use.

Hot path: `cost_of` runs once per request. `genai_prices.calc_price` costs ~200 us a call
(it re-validates the model's price units, builds a `Usage`, decomposes it with Decimals), so
instead we resolve (provider, model) once to a model of the table, whose prices are float
per-token rates, and per call do a handful of float multiplications. The arithmetic mirrors
genai-prices' own rules (see `_Rates`); the tests check it against `ModelPrice.calc_price`
for every bundled model.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import threading
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypedDict

from heliograph import price_table
from heliograph.providers.catalog import BUILTIN_PROVIDERS

__all__ = ("Usage", "Cost", "PricedUsage", "cost_of", "price_usage", "usage_from_openai",
           "token_count", "malformed_counts",
           "UNKNOWN")


@dataclass
class Usage:
    """Token usage in the OpenAI convention.

    `prompt_tokens` counts ALL input tokens, cached (cache-read) and cache-write ones included;
    `completion_tokens` counts ALL output tokens, reasoning ones included.

    Treat it as a value (nothing changes one once made). Not a frozen dataclass: its
    __init__ would set each field through object.__setattr__, ~11,000 instructions against
    ~3,400, and every answer makes one (usage_from_openai).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # A count the provider sent was not a count (negative, absurdly large, not a number):
    # it is read as 0, and the request's cost is unknown rather than a confident $0.
    # (Not compared: two usages with the same counts are the same usage.)
    malformed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Cost:
    usd: float | None
    known: bool


UNKNOWN = Cost(None, False)

# Gateway provider name -> genai-prices provider id: the built-in providers' ids are
# catalog data; these aliases cover user-defined providers named after a cloud.
_PROVIDER_ALIASES: dict[str, str] = {
    "google": "google",
    "vertex": "google",
    "x-ai": "x-ai",
    "bedrock": "aws",
}
_PROVIDER_IDS: dict[str, str] = _PROVIDER_ALIASES | {
    name: b.price_id for name, b in BUILTIN_PROVIDERS.items() if b.price_id is not None}
# Local inference servers have no list price; never borrow a cloud provider's price for them.
_UNPRICED_PROVIDERS = frozenset(name for name, b in BUILTIN_PROVIDERS.items()
                                if b.price_id is None)


class _Rates:
    """One genai-prices `ModelPrice` as floats (USD per token): a table rates list.

    Mirrors `ModelPrice.calc_price` for the units we report. genai-prices' units form a
    hierarchy and each priced unit is charged on its *leaf* count (its count minus the counts
    of its priced descendants): input_tokens is the total of all input, cache_read_tokens and
    cache_write_tokens are subsets of it, output_reasoning_tokens a subset of output_tokens.
    So a subset whose own price is missing is charged at its parent's rate (e.g. cache reads
    on a model with no cache-read price cost the normal input rate), never twice. Cache
    writes are charged at `cache_write_mtok` (the 5-minute rate; the 1h rate needs a TTL split
    we do not have). `requests_kcount` charges one request per call. Tiered prices apply the
    tier reached by total input tokens to all tokens of that unit, like genai-prices.
    """

    __slots__ = ("inp", "out", "cache_read", "cache_write", "reasoning", "per_request", "tiers")

    def __init__(self, rates: list) -> None:
        (self.inp, self.out, self.cache_read, self.cache_write, self.reasoning,
         self.per_request, tiers) = rates
        # ((field index, ((start, usd_per_token), ...) highest start first), ...)
        self.tiers = tuple((index, tuple((start, rate) for start, rate in steps))
                           for index, steps in tiers)

    def price(self, u: Usage) -> float:
        p = u.prompt_tokens if u.prompt_tokens > 0 else 0
        c = u.completion_tokens if u.completion_tokens > 0 else 0
        cr = u.cached_tokens if u.cached_tokens > 0 else 0
        cw = u.cache_write_tokens if u.cache_write_tokens > 0 else 0
        r = u.reasoning_tokens if u.reasoning_tokens > 0 else 0
        inp, out, cr_rate, cw_rate, r_rate = self.inp, self.out, self.cache_read, self.cache_write, self.reasoning
        if self.tiers:
            rates = [inp, out, cr_rate, cw_rate, r_rate]
            for index, steps in self.tiers:
                for start, tier_rate in steps:
                    if p > start:
                        rates[index] = tier_rate
                        break
            inp, out, cr_rate, cw_rate, r_rate = rates
        total = self.per_request
        plain_in = p
        if cr_rate is not None:
            plain_in -= cr
            total += cr * cr_rate
        if cw_rate is not None:
            plain_in -= cw
            total += cw * cw_rate
        # Inconsistent counts (subsets larger than the total) must not yield a negative charge.
        if plain_in > 0:
            total += plain_in * inp
        plain_out = c
        if r_rate is not None:
            plain_out -= r
            total += r * r_rate
        if plain_out > 0:
            total += plain_out * out
        return total


class _StartDate:
    """A price in force from a UTC date on (naive times are UTC)."""

    __slots__ = ("start",)

    def __init__(self, start: str) -> None:
        self.start = _dt.date.fromisoformat(start)

    def active(self, when: _dt.datetime) -> bool:
        if when.tzinfo is not None:
            when = when.astimezone(_dt.UTC)
        return when.date() >= self.start


class _TimeOfDay:
    """A price in force between two UTC times of day (wrapping past midnight when the end
    is earlier than the start), e.g. off-peak rates."""

    __slots__ = ("start", "end")

    def __init__(self, start: str, end: str) -> None:
        self.start = _dt.time.fromisoformat(start)
        self.end = _dt.time.fromisoformat(end)

    def active(self, when: _dt.datetime) -> bool:
        if when.tzinfo is not None:
            when = when.astimezone(_dt.UTC)
        now = when.time()
        if self.end < self.start:
            return now >= self.start or now < self.end
        return self.start <= now < self.end


def _constraint(spec: list | None) -> _StartDate | _TimeOfDay | None:
    if spec is None:
        return None
    if spec[0] == "start_date":
        return _StartDate(spec[1])
    if spec[0] == "time_of_day":
        return _TimeOfDay(spec[1], spec[2])
    raise ValueError(f"unknown price constraint {spec[0]!r}")


_Match = Any  # a compiled match: ("equals", text) ... ("regex", pattern) ("or", (...))


def _compile_match(spec: list) -> _Match:
    kind, arg = spec
    if kind in ("or", "and"):
        return (kind, tuple(_compile_match(part) for part in arg))
    if kind == "regex":
        return (kind, re.compile(arg))
    return (kind, arg)


def _matches(match: _Match, name: str) -> bool:
    """Whether a lower-cased model name meets a match rule (genai-prices' clauses)."""
    kind, arg = match
    if kind == "equals":
        return name == arg
    if kind == "starts_with":
        return name.startswith(arg)
    if kind == "contains":
        return arg in name
    if kind == "ends_with":
        return name.endswith(arg)
    if kind == "regex":
        return arg.search(name) is not None
    if kind == "or":
        return any(_matches(part, name) for part in arg)
    if kind == "and":
        return all(_matches(part, name) for part in arg)
    raise ValueError(f"unknown match clause {kind!r}")


class _Model:
    __slots__ = ("id", "match", "fixed", "conditional")

    def __init__(self, spec: list) -> None:
        self.id, match, (kind, prices) = spec
        self.match = _compile_match(match)
        if kind == "fixed":
            self.fixed: _Rates | None = _Rates(prices)
            self.conditional: tuple = ()
        else:
            # Same rule as genai-prices' ModelInfo.get_prices: the last price whose
            # constraint holds wins, falling back to the first one.
            self.fixed = None
            self.conditional = tuple((_constraint(c), _Rates(r)) for c, r in reversed(prices))


class _Provider:
    __slots__ = ("id", "model_match", "fallbacks", "_models_json", "_models")

    def __init__(self, spec: list) -> None:
        self.id, model_match, self.fallbacks, models_json = spec
        self.model_match = _compile_match(model_match) if model_match is not None else None
        # Kept compressed until first used: a worker prices a few of the ~50 providers,
        # and their texts (~390 KB) compress ~7 to 1 (in ~3 ms for all of them).
        self._models_json = zlib.compress(models_json.encode(), 1)
        self._models: list[_Model] | None = None

    @property
    def models(self) -> list[_Model]:
        """Parsed on first use (see price_table.FORMAT); a race parses twice, harmlessly."""
        if self._models is None:
            self._models = [_Model(m) for m in json.loads(zlib.decompress(self._models_json))]
        return self._models


class _Prices:
    """The whole table, resolved by genai-prices' rules (Provider.find_model)."""

    def __init__(self, table: dict) -> None:
        self.providers = [_Provider(p) for p in table["providers"]]
        self.by_id = {p.id: p for p in self.providers}

    def _match_model(self, provider: _Provider, name: str, fallback: bool) -> _Model | None:
        for model in provider.models:
            if _matches(model.match, name):
                return model
        if fallback:
            # One step only: a fallback provider's own fallbacks are not followed.
            for provider_id in provider.fallbacks:
                other = self.by_id.get(provider_id)
                if other is not None:
                    found = self._match_model(other, name, False)
                    if found is not None:
                        return found
        return None

    def find_model(self, provider: _Provider, name: str) -> _Model | None:
        found = self._match_model(provider, name, True)
        if found is None:
            # LiteLLM/OpenRouter write dates compactly (gpt-5.2-20251211); the data's
            # aliases have dashes: retry with them.
            dashed = _dashed_dates(name)
            if dashed != name:
                found = self._match_model(provider, dashed, True)
        return found

    def find_by_model(self, name: str) -> tuple[_Provider, _Model] | None:
        # genai-prices' provider-less rule (DataSnapshot.find_provider): the first provider
        # whose model_match accepts the name, then that provider's model list (and fallbacks).
        for p in self.providers:
            if p.model_match is not None and _matches(p.model_match, name):
                m = self.find_model(p, name)
                return (p, m) if m is not None else None
        return None


_COMPACT_DATE = re.compile(r"-(20\d\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def _dashed_dates(name: str) -> str:
    def dashed(m: re.Match[str]) -> str:
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        try:
            _dt.date(year, month, day)
        except ValueError:  # 20250231: not a date, left alone
            return m[0]
        return f"-{m[1]}-{m[2]}-{m[3]}"

    return _COMPACT_DATE.sub(dashed, name)


_PRICES: _Prices | None = None
_PRICES_LOCK = threading.Lock()


def _prices() -> _Prices:
    """The table: the file serve wrote when there is one for this genai-prices data, else
    built here (importing genai-prices) once."""
    global _PRICES
    if _PRICES is None:
        with _PRICES_LOCK:
            if _PRICES is None:
                path = os.environ.get(price_table.PRICE_TABLE_ENV)
                table = price_table.read(path) if path else None
                _PRICES = _Prices(table if table is not None else price_table.build())
    return _PRICES


class _Pricer:
    """A resolved model: fixed rates, or date/time-conditional ones (genai `ConditionalPrice`)."""

    __slots__ = ("provider_id", "model_id", "fixed", "conditional")

    def __init__(self, provider: _Provider, model: _Model) -> None:
        self.provider_id = provider.id
        self.model_id = model.id
        self.fixed = model.fixed
        self.conditional = model.conditional

    def rates_at(self, when: _dt.datetime | float | None) -> _Rates | None:
        if self.fixed is not None:
            return self.fixed
        # Converted only here: most models have fixed prices, and the hot path passes
        # the request's epoch seconds.
        if when is None:
            when = _dt.datetime.now(_dt.UTC)
        elif not isinstance(when, _dt.datetime):
            when = _dt.datetime.fromtimestamp(when, _dt.UTC)
        for constraint, rates in self.conditional:
            if constraint is None or constraint.active(when):
                return rates
        # None active: genai-prices uses the first listed price (last in our reversed tuple).
        return self.conditional[-1][1] if self.conditional else None


def _gp_provider_for(provider: str) -> tuple[bool, _Provider | None]:
    """(priceable, genai provider or None meaning "match by model name alone")."""
    name = provider.strip().lower()
    if name in _UNPRICED_PROVIDERS:
        return False, None
    gp_id = _PROVIDER_IDS.get(name, name)
    return True, _prices().by_id.get(gp_id)


@lru_cache(maxsize=4096)
def _resolve(provider: str, model: str) -> _Pricer | None:
    priceable, gp = _gp_provider_for(provider)
    ref = model.strip().lower()
    if not priceable or not ref:
        return None
    prices = _prices()
    if gp is not None:
        m = prices.find_model(gp, ref)
        return _Pricer(gp, m) if m is not None else None
    # A user-defined provider name genai-prices does not know: match on the model name alone.
    found = prices.find_by_model(ref)
    if found is None and "/" in ref:
        # e.g. "openai/gpt-4o" through a user-defined OpenAI-compatible router.
        found = prices.find_by_model(ref.rsplit("/", 1)[1])
    return _Pricer(*found) if found is not None else None


def cost_of(provider: str, model: str, usage: Usage, *,
            at: _dt.datetime | float | None = None) -> Cost:
    """Price `usage` of `model` served by the gateway provider `provider`.

    Returns Cost(None, False) when genai-prices' bundled data has no price for the model.
    `at` is the request time (a datetime or epoch seconds; default now); it only matters
    for models whose price changes by date or time of day.
    """
    usd = _usd(provider, model, usage, at)
    return UNKNOWN if usd is None else Cost(usd, True)


def _usd(provider: str, model: str, usage: Usage,
         at: _dt.datetime | float | None) -> float | None:
    """cost_of's price, None when unknown (price_usage takes it without a Cost)."""
    if not isinstance(provider, str) or not isinstance(model, str) or usage.malformed:
        return None
    pricer = _resolve(provider, model)
    if pricer is None:
        return None
    rates = pricer.rates_at(at)
    if rates is None:
        return None
    return rates.price(usage)


class PricedUsage(TypedDict):
    """The log record's usage and cost fields, filled in one go (`record.update(...)`).
    Typed as in records.Record (TypedDict items are invariant); the counts are never
    None here."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cached_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    cost_known: bool


def price_usage(provider: str, model: str, usage: Usage,
                at: _dt.datetime | float | None = None) -> PricedUsage:
    """THE pricing of a request: the record fields for `usage` of `model` served by
    `provider` at time `at` (epoch seconds or a datetime; default now). The proxy uses
    it for every answer and a logging API can use it for records it is handed, so a
    request costs the same whichever way it reached the log."""
    usd = _usd(provider, model, usage, at)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost_usd": usd,
        "cost_known": usd is not None,
    }


# More tokens than any request could use: a count above it is malformed, like a negative
# one (and would not fit the log's 64-bit columns).
MAX_TOKENS = 10**15


def token_count(v: Any) -> int:
    """A token count from a provider's usage; 0 when missing or malformed."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v if 0 < v <= MAX_TOKENS else 0
    if isinstance(v, float) and 0 < v <= MAX_TOKENS:  # also false for NaN
        return int(v)
    return 0


def malformed_counts(*values: Any) -> bool:
    """Whether any count that is present is not a count token_count() takes as it is."""
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or token_count(v) != v:
            return True
    return False


def usage_from_openai(usage: dict | None) -> Usage:
    """Usage from an OpenAI chat-completions `usage` object; missing or malformed fields -> 0.

    Also accepts Responses-API names (input_tokens/output_tokens, *_tokens_details) as a
    fallback, and Anthropic's usage (recognised by its cache_*_input_tokens fields).
    Cache writes: `prompt_tokens_details.cache_write_tokens` (OpenAI's name, which the
    translating adapters use) or `cache_creation_tokens`.
    """
    if not isinstance(usage, dict):
        return Usage()
    if "prompt_tokens" not in usage and (
            "cache_creation_input_tokens" in usage or "cache_read_input_tokens" in usage):
        # Anthropic's own usage; imported here, as formats import this module.
        from heliograph.formats.anthropic.usage import to_usage
        return to_usage(usage)
    prompt = usage.get("prompt_tokens")
    if prompt is None:
        prompt = usage.get("input_tokens")
    completion = usage.get("completion_tokens")
    if completion is None:
        completion = usage.get("output_tokens")
    pd = usage.get("prompt_tokens_details")
    if not isinstance(pd, dict):
        pd = usage.get("input_tokens_details")
    cd = usage.get("completion_tokens_details")
    if not isinstance(cd, dict):
        cd = usage.get("output_tokens_details")
    pd = pd if isinstance(pd, dict) else {}
    cd = cd if isinstance(cd, dict) else {}
    cache_write = pd.get("cache_write_tokens") or pd.get("cache_creation_tokens")
    cached = pd.get("cached_tokens")
    reasoning = cd.get("reasoning_tokens")
    if _exact(prompt) and _exact(completion) and _exact(cached) and _exact(cache_write) \
            and _exact(reasoning):
        # What providers send (every answer is priced through here): each count is its
        # own token_count and nothing is malformed, so neither is asked again.
        return Usage(prompt or 0, completion or 0, cached or 0, cache_write or 0,
                     reasoning or 0)
    return Usage(
        prompt_tokens=token_count(prompt),
        completion_tokens=token_count(completion),
        cached_tokens=token_count(cached),
        cache_write_tokens=token_count(cache_write),
        reasoning_tokens=token_count(reasoning),
        malformed=malformed_counts(prompt, completion, cached, cache_write, reasoning),
    )


def _exact(v: Any) -> bool:
    """Absent, or a count token_count() takes as it is (an int, not a bool, in range)."""
    return v is None or (type(v) is int and 0 <= v <= MAX_TOKENS)
