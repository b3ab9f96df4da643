"""Most-hit cache entries (analytics/cache_entries.py) from the hourly entry rollup the
writer keeps, against the same query over raw rows, on both stores: windows cut mid-hour
(rollup hours plus raw edges), the filters the rollup answers and one it does not, a
journal replay, organizations apart, and the fill and prompt of each entry."""

from __future__ import annotations

import datetime as _dt

import orjson
import pytest

from heliograph.analytics.cache_entries import cache_entries, prompt_preview
from heliograph.analytics.filters import RequestFilter
from heliograph.demo.history import HistoryGenerator

UNTIL = _dt.datetime(2024, 6, 10, 12, 34, 56, tzinfo=_dt.UTC).timestamp()
FILTERS = [
    RequestFilter(),
    RequestFilter(since="2024-06-08T09:17:03.000000Z"),
    RequestFilter(since="2024-06-08T09:17:03.000000Z", until="2024-06-09T16:40:00.000000Z"),
    RequestFilter(since="2024-06-09T10:05:00.000000Z", until="2024-06-09T10:55:00.000000Z"),
    RequestFilter(model="gpt-4o-mini", since="2024-06-08T00:30:00.000000Z"),
    RequestFilter(cache="hit"),
    RequestFilter(properties={"feature": "search"}),   # not in the rollup: raw rows
]


def demo_records(n: int, organization: str = "org1", seed: int = 16) -> list[dict]:
    """Demo records; the hits of every other entry name the request that filled it
    (cache_reference_id: the entry's latest successful miss before them), as live hits
    do; the others name none, as hits logged before the gateway recorded it."""
    generator = HistoryGenerator(n, 3.0, seed=seed, until=UNTIL, organization=organization)
    records = sorted((rec for batch in generator.batches(500) for rec in batch),
                     key=lambda r: r["created_at"])
    fills: dict[str, str] = {}
    for rec in records:
        entry = rec["cache_entry"]
        if rec["cache"] == "miss" and rec["status"] < 300:
            fills[entry] = rec["id"]
        elif rec["cache"] == "hit" and int(entry, 16) % 2 and entry in fills:
            rec["cache_reference_id"] = fills[entry]
    return records


def same(got: list[dict], want: list[dict]) -> None:
    assert [e["cache_entry"] for e in got] == [e["cache_entry"] for e in want]
    for g, w in zip(got, want):
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
            else:
                assert g[key] == value, key


def test_entries_from_the_rollup_equal_raw_rows(store, reader, raw_reader):
    records = demo_records(3000)
    for start in range(0, len(records), 400):
        store.insert_records(records[start:start + 400])
    store.insert_records(demo_records(300, organization="org2", seed=3))
    store.insert_records(records[:500])   # a journal replay is not counted again
    for flt in FILTERS:
        got = cache_entries(reader, "org1", flt, 15)
        same(got, cache_entries(raw_reader, "org1", flt, 15))
        assert got, flt
    # The counts are what the records say, most hits first.
    top = cache_entries(reader, "org1", RequestFilter(), 100)
    hits: dict[str, list[dict]] = {}
    for rec in records:
        if rec["cache"] == "hit":
            hits.setdefault(rec["cache_entry"], []).append(rec)
    assert [e["hits"] for e in top] == sorted((len(v) for v in hits.values()),
                                              reverse=True)[:100]
    first = top[0]
    mine = hits[first["cache_entry"]]
    assert first["saved_usd"] == pytest.approx(sum(r["cost_saved_usd"] or 0 for r in mine))
    assert first["first_hit_at"] == min(r["created_at"] for r in mine)
    assert first["last_hit_at"] == max(r["created_at"] for r in mine)
    fills = [r for r in records if r["cache_entry"] == first["cache_entry"]
             and r["cache"] == "miss" and r["status"] < 300
             and r["created_at"] <= first["last_hit_at"]]
    fill = max(fills, key=lambda r: r["created_at"])
    assert first["filled_by"] == fill["id"]
    # Named by the latest hit where hits name their fill, found by time where they do not.
    named = {e["cache_entry"]: e["filled_by"] for e in top if int(e["cache_entry"], 16) % 2
             and any(r["cache_reference_id"] for r in hits[e["cache_entry"]])}
    assert len(named) > 3 and all(
        filled_by == max((r for r in hits[entry] if r["cache_reference_id"]),
                         key=lambda r: r["created_at"])["cache_reference_id"]
        for entry, filled_by in named.items())
    assert first["time_saved_ms"] == pytest.approx(
        sum(fill["latency_ms"] - r["latency_ms"] for r in mine))
    assert first["prompt_preview"] == prompt_preview(orjson.dumps(fill["request"]).decode())
    # Another organization's entries are its own; a miss-only filter lists none.
    others = {e["cache_entry"] for e in cache_entries(reader, "org2", RequestFilter(), 100)}
    assert others and not others & set(hits)
    assert cache_entries(reader, "org1", RequestFilter(cache="miss")) == []
    # An entry's records through the query API's filter.
    found, _ = reader.list_requests("org1", RequestFilter(cache_entry=first["cache_entry"],
                                                          cache="hit"), 1000)
    assert sorted(r["id"] for r in found) == sorted(r["id"] for r in mine)


@pytest.mark.parametrize("body, preview", [
    ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "one"},
                   {"role": "assistant", "content": "a"},
                   {"role": "user", "content": [{"type": "text", "text": "two\n  lines"}]}]},
     "two lines"),
    ({"input": "a responses prompt"}, "a responses prompt"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "item"}]}]},
     "item"),
    ({"prompt": "legacy"}, "legacy"),
    ({"messages": [{"role": "user", "content": "x" * 500}]}, "x" * 119 + "…"),
    ({"messages": "not a list"}, None),
])
def test_prompt_preview_is_the_last_user_message(body, preview):
    assert prompt_preview(orjson.dumps(body).decode()) == preview
    assert prompt_preview(None) is None and prompt_preview("{not json") is None
