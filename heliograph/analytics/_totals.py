"""Totals: the additive counters of one group, filled from rollup rows or from raw rows
aggregated by SQL (store/_rollups.py defines both shapes), and the metrics they give.

Percentiles come from the latency histogram: the bin holding the wanted rank, interpolated
by rank inside it and clamped to the group's smallest and largest latency, so a group's
largest value (the p95 of up to 20 requests) is exact and any other is within the bin.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import accumulate
from operator import itemgetter

from heliograph.store._rollups import HISTOGRAM_COLUMNS, LATENCY_BOUNDS, SUM_COLUMNS

N_SUMS = len(SUM_COLUMNS)
N_BINS = len(HISTOGRAM_COLUMNS)
_INDEX = {name: i for i, name in enumerate(SUM_COLUMNS)}
_FLOATS = frozenset({"cost_usd", "cost_saved_usd", "latency_sum"})
# Totals.metrics() unpacks the sums in this order.
_ORDER = ("requests", "errors", "cache_hits", "cost_usd", "cost_unknown", "cost_saved_usd",
          "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
          "cache_write_tokens", "reasoning_tokens", "latency_sum", "latency_count")
if tuple(SUM_COLUMNS) != _ORDER:
    raise ImportError("SUM_COLUMNS changed order: update Totals.metrics()")

# SQL selecting, from a rollup table, the columns add_rollup() takes (after the keys).
ROLLUP_SELECT = ", ".join([*(f"SUM({c})" for c in SUM_COLUMNS), "MIN(latency_min)",
                           "MAX(latency_max)", *(f"SUM({c})" for c in HISTOGRAM_COLUMNS)])
# The columns those aggregate, as a rollup table names them (all but its keys).
ROLLUP_COLUMNS: tuple[str, ...] = (*SUM_COLUMNS, "latency_min", "latency_max",
                                   *HISTOGRAM_COLUMNS)
# Sums that metrics() never shows: a read may leave them out (they stay 0).
UNSHOWN_SUMS = frozenset({"cached_tokens", "cache_write_tokens", "reasoning_tokens"})
_EXTREME_OF = {"latency_min": "MIN", "latency_max": "MAX"}


def rollup_select(columns: Sequence[str]) -> str:
    """ROLLUP_SELECT for some of ROLLUP_COLUMNS only (in that order)."""
    return ", ".join(f"{_EXTREME_OF.get(c, 'SUM')}({c})" for c in columns)


def widener(columns: Sequence[str]) -> Callable[[Sequence], tuple]:
    """A row of these ROLLUP_COLUMNS → the full row from_rollup takes, 0 for the others."""
    at = {c: i for i, c in enumerate(columns)}
    get = itemgetter(*(at.get(c, len(columns)) for c in ROLLUP_COLUMNS))
    return lambda row: get((*row, 0))


# The same without the histogram, for tables that keep none (per user, per session).
ROLLUP_SELECT_FLAT = ", ".join([*(f"SUM({c})" for c in SUM_COLUMNS), "MIN(latency_min)",
                                "MAX(latency_max)"])


class Totals:
    __slots__ = ("sums", "hist", "lat_min", "lat_max")

    def __init__(self) -> None:
        self.sums: list = [0] * N_SUMS
        self.hist: list[int] = [0] * N_BINS
        self.lat_min: float | None = None
        self.lat_max: float | None = None

    def _extremes(self, lo, hi) -> None:
        if lo is not None:
            self.lat_min = lo if self.lat_min is None else min(self.lat_min, lo)
        if hi is not None:
            self.lat_max = hi if self.lat_max is None else max(self.lat_max, hi)

    def add_rollup(self, row: Sequence) -> None:
        """row: SUM_COLUMNS, latency_min, latency_max, then the histogram (if kept)."""
        # Comprehensions over zip: this runs for every group of every query, holding the
        # GIL the proxy's event loop needs, so it is kept to C-speed iteration.
        self.sums = [a + (b or 0) for a, b in zip(self.sums, row[:N_SUMS])]
        self._extremes(row[N_SUMS], row[N_SUMS + 1])
        hist = row[N_SUMS + 2:]
        if hist:
            self.hist = [a + int(b or 0) for a, b in zip(self.hist, hist)]

    @classmethod
    def from_rollup(cls, row: Sequence) -> Totals:
        """A new group from one summed rollup row (as add_rollup takes it, with its
        histogram): no zeros to add first."""
        out = cls()
        sums = row[:N_SUMS]
        # A NULL sum only where no row had the column at all; else copied in C.
        out.sums = list(sums) if None not in sums else [b or 0 for b in sums]
        out.lat_min, out.lat_max = row[N_SUMS], row[N_SUMS + 1]
        hist = row[N_SUMS + 2:]
        if hist:
            # The bins are INTEGER columns, summed as int on both databases: only a NULL
            # (no row at all) needs replacing, and list() copies in C (metrics by user_id
            # makes one per user).
            out.hist = list(hist) if None not in hist else [int(b or 0) for b in hist]
        return out

    def add_raw(self, lat_bin, row: Sequence) -> None:
        """One raw_groups_sql row after its keys: the bin, then as add_rollup without the
        histogram (the bin's latency_count goes to that bin)."""
        self.add_rollup(row[:N_SUMS + 2])
        if lat_bin is not None:
            self.hist[int(lat_bin)] += int(row[_INDEX["latency_count"]] or 0)

    def subtract(self, other: Totals) -> Totals:
        """self − other, for the group a table leaves out (total − the groups it has).
        Its latency extremes are unknown; percentiles then use the bins' bounds."""
        out = Totals()
        out.sums = [a - b for a, b in zip(self.sums, other.sums)]
        out.hist = [a - b for a, b in zip(self.hist, other.hist)]
        return out

    def shown_columns(self) -> tuple[str, ...]:
        """The rollup columns a group within this total needs for its metrics(): not
        the sums metrics() leaves out, nor the latency bins this total has none in (a
        group's counts are each at most the total's, so they are 0 there too)."""
        empty = {c for c, n in zip(HISTOGRAM_COLUMNS, self.hist) if n == 0}
        return tuple(c for c in ROLLUP_COLUMNS if c not in UNSHOWN_SUMS and c not in empty)

    def get(self, name: str):
        value = self.sums[_INDEX[name]]
        return float(value) if name in _FLOATS else int(value)

    @property
    def requests(self) -> int:
        return self.get("requests")

    def percentile(self, q: float, running: list[int] | None = None,
                   count: int | None = None) -> float | None:
        """running: _running() of this histogram, count: sum(self.hist), when the caller
        has them already."""
        running = self._running() if running is None else running
        count = sum(self.hist) if count is None else count
        return percentile_of(q, self.hist, running, count, self.lat_min, self.lat_max)

    def _running(self) -> list[int]:
        """Running counts of the histogram; a bin below zero (possible in a subtracted
        group) adds none. In C: this runs for every group of every query."""
        hist = self.hist
        return list(accumulate(hist if min(hist) >= 0 else (max(x, 0) for x in hist)))

    def metrics(self) -> dict:
        (requests, errors, cache_hits, cost, unpriced, saved, prompt, completion, total,
         _cached, _cache_write, _reasoning, latency_sum, latency_count) = self.sums
        requests, errors, latency_count = int(requests), int(errors), int(latency_count)
        count = sum(self.hist)
        if count > 0:
            running = self._running()
            p50, p95 = self.percentile(0.5, running, count), self.percentile(0.95, running, count)
        else:   # no latency kept: nothing to rank (and no running counts to make)
            p50 = p95 = None
        return metrics_dict(requests, errors, cache_hits, cost, unpriced, saved, prompt,
                            completion, total, latency_sum, latency_count, p50, p95)


def metrics_dict(requests: int, errors: int, cache_hits, cost, unpriced, saved, prompt,
                 completion, total, latency_sum, latency_count: int, p50, p95) -> dict:
    """A group's metrics as the API answers them (in this key order), from its sums and
    percentiles: shared by Totals and the per-user rows read without one (_narrow.py)."""
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "cost_usd": float(cost),
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "avg_latency_ms": (float(latency_sum) / latency_count
                           if latency_count else None),
        "p95_latency_ms": p95,
        "cache_hits": int(cache_hits),
        # Added with the rollups (#16): what the overview shows.
        "p50_latency_ms": p50,
        "total_tokens": int(total),
        "cost_saved_usd": float(saved),
        "unpriced_requests": int(unpriced),
    }


def percentile_of(q: float, hist: Sequence[int], running: list[int], count: int,
                  lat_min, lat_max, bins: Sequence[int] | None = None) -> float | None:
    """The q-th latency of a histogram (`running`: its running counts, `count`: its
    total): nearest rank, placed in its bin between the bin's bounds (narrowed by the
    group's min and max). `bins`: which latency bin each position of `hist` is, when the
    histogram holds only some (_narrow.py); every bin, in order, when None."""
    if count <= 0:
        return None
    rank = max(1, math.ceil(q * count))   # nearest rank
    # The first position whose running count reaches the rank holds it.
    i = bisect_left(running, rank)
    if i >= len(running):
        return lat_max
    b = i if bins is None else bins[i]
    in_bin = hist[i]
    seen = running[i] - in_bin
    lo = LATENCY_BOUNDS[b - 1] if b > 0 else 0.0
    hi = LATENCY_BOUNDS[b] if b < len(LATENCY_BOUNDS) else lo * math.sqrt(2)
    if lat_min is not None:
        lo = max(lo, min(lat_min, hi))
    if lat_max is not None:
        hi = min(hi, max(lat_max, lo))
    return lo + (hi - lo) * (rank - seen) / in_bin
