"""Prometheus counters fed by finished records: a record sink, never code in the pipeline.

Every record costs a handful of counter increments. The label children are cached by the
raw label tuple, so the hot path skips prometheus-client's label validation; the number of
distinct label sets is capped (MAX_SERIES per metric) so a caller sending random model
names cannot grow the scrape without bound: past the cap, the model label reads "other".

Under several uvicorn workers the values live in prometheus-client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, set by heliograph/prometheus.py before the workers start) and
are summed at scrape time; in a single process they live in this sink's own registry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from heliograph import metrics_files
from heliograph.records import Record

# Multiprocess files that reserve their disk blocks: a full disk is an error, not SIGBUS.
metrics_files.install()

# Paths that carry an id (a file's, a batch's) are counted by their route: one series per
# route, not one per file.
_WITH_IDS = ("/v1/files/", "/v1/batches/", "/files/", "/batches/")


def _route(path: str) -> str:
    """The route of a path that starts with one of _WITH_IDS, its id replaced (the
    caller checks the prefix: most paths have none and are their own route)."""
    parts = path.split("/")          # ['', 'v1', 'files', '<id>', ...]
    parts[3 if parts[1] == "v1" else 2] = "{id}"
    return "/".join(parts)

# Distinct label sets kept per metric before the model label is folded into "other".
MAX_SERIES = 2000
OTHER = "other"
# Seconds. LLM calls run from tens of milliseconds (cache hits) to minutes (long streams).
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
TOKEN_KINDS = (("prompt", "prompt_tokens"), ("completion", "completion_tokens"),
               ("cached", "cached_tokens"), ("cache_write", "cache_write_tokens"),
               ("reasoning", "reasoning_tokens"))
STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# The gateway's own upstream failures (heliograph/providers/http.py `translated`), told
# apart from a provider's error status by their messages: the record keeps no error code.
TIMEOUT_MARK = "did not answer in time"
CONNECTION_MARKS = ("could not connect to", "closed the connection", "the connection to",
                    "error talking to", "sent a truncated")
# Budgets do not exist yet; a refusal will be a 429 whose error says so (PRODUCT.md).
BUDGET_MARK = "budget_exceeded"


class _Family:
    """One metric and its children by raw label tuple (a dict hit per record)."""

    def __init__(self, metric: Any, limit: int = MAX_SERIES) -> None:
        self.metric = metric
        self.limit = limit
        self.children: dict[tuple, Any] = {}

    def child(self, labels: tuple) -> Any:
        found = self.children.get(labels)
        if found is None:
            if len(self.children) >= self.limit:
                labels = (OTHER, *labels[1:])  # the model is always the first label
                found = self.children.get(labels)
                if found is not None:
                    return found
            found = self.children[labels] = self.metric.labels(*labels)
        return found


def _adder(counter_child: Any) -> Callable[[float], None]:
    """An increment of a counter child's value itself (metrics_files.adder). Counter.inc
    only checks that the child is labelled (every child here is) and that the amount is
    not negative (token counts and costs never are) before adding."""
    return metrics_files.adder(counter_child._value)


def _observer(histogram_child: Any) -> Callable[[float], None]:
    """Histogram.observe of one child, by its values: the sum, and the one bucket the
    amount falls in (multiprocess histograms keep buckets non-cumulative, and so does the
    in-process child until a scrape adds them up). bisect finds the first bound >= the
    amount, the bucket Histogram.observe's loop stops at. A closure, not an object with
    __call__: calling an instance goes through its type's call slot and a frame of its
    own, ~2,500 instructions more a call (two calls a record)."""
    add_sum = metrics_files.adder(histogram_child._sum)
    bounds = tuple(histogram_child._upper_bounds)
    buckets = tuple(metrics_files.adder(bucket) for bucket in histogram_child._buckets)

    def observe(amount: float) -> None:
        add_sum(amount)
        if amount == amount:  # a NaN: no bucket takes it (bisect would say the first)
            buckets[bisect_left(bounds, amount)](1)  # the last bound is +Inf

    return observe


@dataclass(frozen=True, slots=True)
class _Common:
    """The value updates every record makes, for one label set."""

    request: Callable[[float], None]
    latency: Callable[[float], None]
    ttft: Callable[[float], None]
    # (record field, its kind's counter): in TOKEN_KINDS' order.
    tokens: tuple[tuple[str, Callable[[float], None]], ...]
    cost: Callable[[float], None]


class MetricsSink:
    def __init__(self) -> None:
        # (model, provider, organization, status // 100, path) → its children.
        self._common: dict[tuple, _Common] = {}
        # Private, so two gateways in one process (tests) never share or collide.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        by_model = ["model", "provider"]
        self.requests = _Family(Counter(
            "heliograph_requests", "Proxied requests by outcome",
            ["model", "provider", "status_class", "organization", "path"], registry=r))
        self.latency = _Family(Histogram(
            "heliograph_request_duration_seconds", "Time from arrival to the last byte",
            by_model, buckets=LATENCY_BUCKETS, registry=r))
        self.ttft = _Family(Histogram(
            "heliograph_time_to_first_token_seconds", "Streams: time to the first token",
            by_model, buckets=TTFT_BUCKETS, registry=r))
        self.tokens = _Family(Counter(
            "heliograph_tokens", "Tokens by kind (prompt, completion, cached, cache_write, "
            "reasoning)", ["model", "provider", "kind"], registry=r),
            limit=MAX_SERIES * len(TOKEN_KINDS))
        self.cost = _Family(Counter(
            "heliograph_cost_usd", "Cost of the requests in US dollars",
            ["model", "provider", "organization"], registry=r))
        self.cache_hits = _Family(Counter(
            "heliograph_cache_hits", "Requests answered from the response cache",
            by_model, registry=r))
        self.cache_saved = _Family(Counter(
            "heliograph_cache_saved_usd", "What the cache hits would have cost",
            by_model, registry=r))
        self.retries = _Family(Counter(
            "heliograph_retries", "Upstream attempts beyond each request's first",
            by_model, registry=r))
        self.fallbacks = _Family(Counter(
            "heliograph_fallbacks", "Requests answered (or failed) past the first model of "
            "their fallback chain", by_model, registry=r))
        self.ratelimited = _Family(Counter(
            "heliograph_ratelimit_refusals", "429s from the gateway's own rate-limit policies",
            ["model", "organization"], registry=r))
        self.budget_refused = _Family(Counter(
            "heliograph_budget_refusals", "429s from an exhausted budget",
            ["model", "organization"], registry=r))
        self.upstream_errors = _Family(Counter(
            "heliograph_upstream_errors", "Failed upstream attempts by kind (status, timeout, "
            "connection)", ["model", "provider", "kind"], registry=r))

    def accept(self, record: Record) -> None:
        model = record["model_used"] or record["model"] or ""
        provider = record["provider"] or ""
        org = record["organization"] or ""
        status = record["status"] or 0
        path = record["path"]
        key = (model, provider, org, status // 100,
               _route(path) if path.startswith(_WITH_IDS) else path)
        common = self._common.get(key) or self._bundle(key)
        common.request(1)
        if record["latency_ms"] is not None:
            common.latency(record["latency_ms"] / 1000)
        if record["ttft_ms"] is not None:
            common.ttft(record["ttft_ms"] / 1000)
        for field, add in common.tokens:
            count = record[field]  # type: ignore[literal-required]
            if count:
                add(count)
        if record["cost_usd"]:
            common.cost(record["cost_usd"])
        by_model = (model, provider)
        if record["cache"] == "hit":
            self.cache_hits.child(by_model).inc()
            if record["cost_saved_usd"]:
                self.cache_saved.child(by_model).inc(record["cost_saved_usd"])
        attempts = record["attempts"]
        if len(attempts) > 1:
            self.retries.child(by_model).inc(len(attempts) - 1)
        if record["fallback_index"]:
            self.fallbacks.child(by_model).inc()
        for attempt in attempts:
            # 499: the caller left mid-stream, not the provider's failure.
            if attempt["status"] != 499 and (attempt["error"] is not None
                                             or attempt["status"] >= 400):
                self.upstream_errors.child(
                    (attempt["model"], attempt["provider"], upstream_error_kind(attempt))).inc()
        if status == 429 and not attempts:
            # No provider was asked: the gateway refused it itself.
            refusals = self.budget_refused if is_budget_refusal(record) else self.ratelimited
            refusals.child((model, org)).inc()

    def _bundle(self, key: tuple) -> _Common:
        """The children every record touches, for one label set, looked up once."""
        if len(self._common) >= MAX_SERIES:
            key = (OTHER, *key[1:])
            if key in self._common:
                return self._common[key]
        model, provider, org, status_class, path = key
        by_model = (model, provider)
        bundle = self._common[key] = _Common(
            request=_adder(self.requests.child(
                (model, provider, STATUS_CLASSES.get(status_class, "none"), org, path))),
            latency=_observer(self.latency.child(by_model)),
            ttft=_observer(self.ttft.child(by_model)),
            tokens=tuple((field, _adder(self.tokens.child((model, provider, kind))))
                         for kind, field in TOKEN_KINDS),
            cost=_adder(self.cost.child((model, provider, org))))
        return bundle

    def close(self) -> None:
        pass  # counters live in memory or in the multiprocess files: nothing to flush


def upstream_error_kind(attempt: dict[str, Any]) -> str:
    """"timeout", "connection" (refused, reset, truncated) or "status" (the provider
    answered with an error status, or something unreadable)."""
    error = attempt["error"] or ""
    if attempt["status"] == 504 and TIMEOUT_MARK in error:
        return "timeout"
    if attempt["status"] == 502 and any(mark in error for mark in CONNECTION_MARKS):
        return "connection"
    return "status"


def is_budget_refusal(record: Record) -> bool:
    code = record.get("error_code")  # a budgets engineer may add the code to the record
    return code == BUDGET_MARK or BUDGET_MARK in (record["error"] or "")
