"""Text search listings on each store, against the records themselves: a word in a few
records (read from its matches), in many (on SQLite read window by window, newest first,
analytics/_search_pages.py), in almost every record, and two words together; each alone
and with time, model and property filters, paged to the end with keyset cursors. Bodies
are stored out of time order (seq order is not time order) and some records share a
created_at, so neither can be taken for the other."""

from __future__ import annotations

import datetime as _dt
import random

import pytest

from heliograph.analytics.filters import RequestFilter
from heliograph.store.search import COMMON_MATCHES

START = _dt.datetime(2024, 5, 1, tzinfo=_dt.UTC)
N = COMMON_MATCHES + 700
STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


def words_of(i: int) -> list[str]:
    found = ["everywhere"]
    if i % 25 != 0:
        found.append("mostly")          # > COMMON_MATCHES records: the window walk
    if i % 97 == 0:
        found.append("seldom")          # few records: read from the matches
    if i % 2 == 0:
        found.append("even")
    return found


def at(i: int) -> str:
    # Over 40 days, busier near the end, with a few records sharing a time.
    minutes = 40 * 24 * 60 * (i / N) ** 0.5
    return (START + _dt.timedelta(minutes=minutes // 1)).strftime(STORED)


@pytest.fixture
def searchable(store, make_record):
    records = [make_record(f"s{i:05d}", at=at(i), organization="org2" if i % 11 == 0
                           else "org1", model="m-a" if i % 3 else "m-b",
                           properties={"env": "prod" if i % 4 else "dev"},
                           request={"messages": [{"role": "user",
                                                  "content": " ".join(words_of(i))}]},
                           response={"text": f"answer {i}"})
               for i in range(N)]
    shuffled = records[:]
    random.Random(10).shuffle(shuffled)
    for start in range(0, N, 500):
        store.insert_records(shuffled[start:start + 500])
    store.index_search(N + 10)
    return records


def expected(records, q: str, flt: RequestFilter) -> list[str]:
    words = q.split()
    kept = []
    for i, rec in enumerate(records):
        if rec["organization"] != "org1" or not all(w in words_of(i) for w in words):
            continue
        if flt.model and rec["model"] != flt.model or flt.status and rec["status"] != flt.status:
            continue
        if flt.properties and rec["properties"]["env"] != flt.properties["env"]:
            continue
        if flt.since and rec["created_at"] < flt.since or flt.until and \
                rec["created_at"] >= flt.until:
            continue
        kept.append(rec)
    kept.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return [r["id"] for r in kept]


def paged(reader, flt: RequestFilter, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        page, cursor = reader.list_requests("org1", flt, limit, cursor)
        assert len(page) <= limit
        seen += [r["id"] for r in page]
        if not cursor:
            return seen


SINCE = (START + _dt.timedelta(days=33, minutes=17)).strftime(STORED)
UNTIL = (START + _dt.timedelta(days=38, hours=5)).strftime(STORED)
FILTERS = [{}, {"since": SINCE}, {"until": UNTIL}, {"since": SINCE, "until": UNTIL}, {"status": 200},
           {"model": "m-b"}, {"model": "m-b", "since": SINCE, "properties": {"env": "dev"}}]


@pytest.mark.parametrize("dense", [0.05, 1.0])   # 1.0: filtered words read matches first
@pytest.mark.parametrize("q", ["mostly", "everywhere", "seldom", "mostly even",
                               "even seldom", "mostly absent"])
def test_search_pages_hold_exactly_the_matches_newest_first(searchable, reader, q, dense,
                                                            monkeypatch):
    monkeypatch.setattr("heliograph.analytics.reader.DENSE_WORDS", dense)
    for fields in FILTERS:
        flt = RequestFilter(q=q, **fields)
        want = expected(searchable, q, flt)
        assert paged(reader, flt, 40) == want, fields
        first, _ = reader.list_requests("org1", flt, 7)
        assert [r["id"] for r in first] == want[:7], fields
    assert expected(searchable, q, RequestFilter(q=q)) or q == "mostly absent"
