"""Groups kept as the one summed rollup row the database sent, for a query with thousands
of groups (metrics by user_id: 5,000 users over 30 days).

Making a Totals of every such row (its columns widened to the full 59, the sums and the
histogram copied) and then its metrics() cost ~20 µs a group, ~100 ms of Python holding
the GIL for 5,000 users. A Narrow reads the metrics straight from the row as read (only
the columns the query asked for: Totals.shown_columns()), in the same arithmetic, so the
answer is the same to the last bit; a group something else is added to (a raw edge of
the window) becomes a Totals first (totals()).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import itemgetter

from heliograph.analytics._totals import Totals, metrics_dict, percentile_of, widener
from heliograph.store._rollups import HISTOGRAM_COLUMNS, SUM_COLUMNS


class Narrow:
    """Rows of `columns` (a subsequence of ROLLUP_COLUMNS holding latency_min/max and
    every sum metrics() shows; the bins left out are 0 in every row)."""

    def __init__(self, columns: Sequence[str]):
        at = {c: i for i, c in enumerate(columns)}
        self.columns = tuple(columns)
        self._widen = widener(columns)
        shown = ("requests", "errors", "cache_hits", "cost_usd", "cost_unknown",
                 "cost_saved_usd", "prompt_tokens", "completion_tokens", "total_tokens",
                 "latency_sum", "latency_count", "latency_min", "latency_max")
        self._shown = itemgetter(*(at[c] for c in shown))
        self._first_bin = len(columns) - sum(c in at for c in HISTOGRAM_COLUMNS)
        if any(c in HISTOGRAM_COLUMNS for c in columns[:self._first_bin]):
            raise ValueError("the histogram's columns come last")
        self._bins = tuple(HISTOGRAM_COLUMNS.index(c) for c in columns[self._first_bin:])
        self._requests = at["requests"]
        # Totals.sums of a row (0 for a sum not read), for merge().
        self._sums = itemgetter(*(at.get(c, len(columns)) for c in SUM_COLUMNS))
        self._extremes = (at["latency_min"], at["latency_max"])

    def requests(self, row: Sequence) -> int:
        return int(row[self._requests])

    def totals(self, row: Sequence) -> Totals:
        return Totals.from_rollup(self._widen(row))

    def metrics(self, row: Sequence) -> dict:
        """Totals.from_rollup(row widened).metrics(), without making either."""
        if None in row[:self._first_bin - 2]:   # a NULL sum: no row at all (never grouped)
            return self.totals(row).metrics()
        (requests, errors, cache_hits, cost, unpriced, saved, prompt, completion, total,
         latency_sum, latency_count, lat_min, lat_max) = self._shown(row)
        requests, errors, latency_count = int(requests), int(errors), int(latency_count)
        hist = row[self._first_bin:]
        count = sum(hist)
        if count > 0 and min(hist) >= 0:
            running = list(accumulate(hist))
            p50 = percentile_of(0.5, hist, running, count, lat_min, lat_max, self._bins)
            p95 = percentile_of(0.95, hist, running, count, lat_min, lat_max, self._bins)
        elif count > 0:   # a negative bin (never in a rollup row): as Totals counts it
            totals = self.totals(row)
            p50, p95 = totals.percentile(0.5), totals.percentile(0.95)
        else:
            p50 = p95 = None
        return metrics_dict(requests, errors, cache_hits, cost, unpriced, saved, prompt,
                            completion, total, latency_sum, latency_count, p50, p95)

    def merge(self, groups: Iterable[Totals | tuple]) -> Totals:
        """_grouped.merge() of these groups (rows of this Narrow or Totals), summed in
        the same order, so the same floats."""
        sums: list[Sequence] = []
        hists: list[Sequence] = []
        lows, highs = [], []
        lo_at, hi_at = self._extremes
        bins, first = self._bins, self._first_bin
        for group in groups:
            if isinstance(group, tuple):
                sums.append(self._sums((*group, 0)))
                hists.append(group[first:])
                lo, hi = group[lo_at], group[hi_at]
            else:
                picked = [group.hist[b] for b in bins]
                if sum(picked) != sum(group.hist):   # a bin the rows leave out: never
                    raise ValueError("a group has latencies in a bin the window has none in")
                sums.append(group.sums)
                hists.append(picked)
                lo, hi = group.lat_min, group.lat_max
            if lo is not None:
                lows.append(lo)
            if hi is not None:
                highs.append(hi)
        out = Totals()
        if not sums:
            return out
        out.sums = [sum(column) for column in zip(*sums)]
        for b, column in zip(bins, zip(*hists)):
            out.hist[b] = sum(column)
        out._extremes(min(lows, default=None), max(highs, default=None))
        return out
