"""Narrow rows (analytics/_narrow.py): a group's metrics read straight from the summed
rollup row equal, to the last bit, those of the Totals made from it, and so does the merge
of many groups (rows and Totals mixed) the rest group is computed from."""

import random

from heliograph.analytics._grouped import merge
from heliograph.analytics._narrow import Narrow
from heliograph.analytics._totals import ROLLUP_COLUMNS, UNSHOWN_SUMS, Totals
from heliograph.store._rollups import HISTOGRAM_COLUMNS, LATENCY_BOUNDS


def columns_without(bins: set[int]) -> tuple[str, ...]:
    left_out = {HISTOGRAM_COLUMNS[b] for b in bins} | UNSHOWN_SUMS
    return tuple(c for c in ROLLUP_COLUMNS if c not in left_out)


def a_row(rng: random.Random, columns: tuple[str, ...]) -> tuple:
    """A summed rollup row of these columns: counts, float sums, extremes inside the
    bins it has counts in (or None), a few bins non-zero as in a user's day."""
    bins = [c for c in columns if c.startswith("lat_")]
    hist = dict.fromkeys(bins, 0)
    for c in rng.sample(bins, rng.randint(0, min(4, len(bins)))):
        hist[c] = rng.choice([1, 1, 2, 3, 17, 1000])
    count = sum(hist.values())
    used = sorted(HISTOGRAM_COLUMNS.index(c) for c, n in hist.items() if n)
    low = LATENCY_BOUNDS[used[0] - 1] * 1.1 if used and used[0] > 0 else 0.3
    high = LATENCY_BOUNDS[min(used[-1], 41)] * 0.97 if used else None
    requests = count + rng.randint(0, 3)
    values = {"requests": requests, "errors": rng.randint(0, requests),
              "cache_hits": rng.randint(0, requests), "cost_usd": rng.random() * 3,
              "cost_unknown": rng.randint(0, 2), "cost_saved_usd": rng.random() / 7,
              "prompt_tokens": rng.randint(0, 10**6), "completion_tokens": rng.randint(0, 10**5),
              "total_tokens": rng.randint(0, 10**6), "latency_sum": rng.random() * 1e5,
              "latency_count": count, "latency_min": low if count else None,
              "latency_max": high if count else None, **hist}
    return tuple(values[c] for c in columns)


def test_metrics_of_a_row_equal_its_totals_metrics_exactly():
    rng = random.Random(7)
    for left_out in (set(), {0, 1, 2, 40, 41, 42}, set(range(0, 43, 2)), set(range(5, 43))):
        columns = columns_without(left_out)
        narrow = Narrow(columns)
        for _ in range(400):
            row = a_row(rng, columns)
            want = narrow.totals(row).metrics()
            got = narrow.metrics(row)
            assert list(got.items()) == list(want.items()), row   # same order, same bits
            assert narrow.requests(row) == want["requests"]


def test_a_row_reaching_the_last_bin_and_one_without_latencies():
    columns = columns_without({3})
    narrow = Narrow(columns)
    at = {c: i for i, c in enumerate(columns)}
    row = [0] * len(columns)
    row[at["requests"]] = row[at["latency_count"]] = row[at["lat_42"]] = 5
    row[at["latency_min"]], row[at["latency_max"]] = 2.0 ** 20.6, 2.0 ** 21
    assert narrow.metrics(tuple(row)) == narrow.totals(tuple(row)).metrics()
    assert narrow.metrics(tuple(row))["p95_latency_ms"] == 2.0 ** 21
    no_latency = [0] * len(columns)
    no_latency[at["requests"]] = 2
    no_latency[at["latency_min"]] = no_latency[at["latency_max"]] = None
    assert narrow.metrics(tuple(no_latency)) == narrow.totals(tuple(no_latency)).metrics()
    assert narrow.metrics(tuple(no_latency))["p50_latency_ms"] is None


def test_merge_of_rows_and_totals_equals_merge_of_totals():
    rng = random.Random(8)
    columns = columns_without({0, 20, 42})
    narrow = Narrow(columns)
    groups: list = [a_row(rng, columns) for _ in range(300)]
    for i in range(0, 300, 7):   # some groups had a raw edge added: Totals by then
        groups[i] = narrow.totals(groups[i])
    want = merge([g if isinstance(g, Totals) else narrow.totals(g) for g in groups])
    got = narrow.merge(groups)
    assert (got.sums, got.hist, got.lat_min, got.lat_max) == (
        want.sums, want.hist, want.lat_min, want.lat_max)
    assert narrow.merge([]).sums == Totals().sums
