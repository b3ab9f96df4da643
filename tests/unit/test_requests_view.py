"""heliograph requests, its pure parts: --since durations, --property parsing, a row, and
--follow printing each record once (a scripted source, no database)."""

from __future__ import annotations

import datetime

import pytest

from heliograph import requests_view as view


def test_since_takes_durations_and_passes_iso_through():
    now = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC).timestamp()
    assert view.since_value("15m", now) == "2026-03-01T11:45:00+00:00"
    assert view.since_value("2d", now) == "2026-02-27T12:00:00+00:00"
    assert view.since_value("2026-01-01T00:00:00Z", now) == "2026-01-01T00:00:00Z"


def test_build_query_is_the_query_apis():
    query = view.build_query(model="gpt-4o", status=429, properties=("Team=search", "A=b=c"))
    assert query == [("model", "gpt-4o"), ("status", "429"), ("property.Team", "search"),
                     ("property.A", "b=c")]
    with pytest.raises(view.SourceError, match="Name=value"):
        view.build_query(properties=("nope",))


def test_row_has_every_column():
    row = view.format_row({"created_at": "2026-03-01T11:45:00.123456Z", "model": "gpt-4o",
                           "provider": "openai", "status": 200, "total_tokens": 42,
                           "cost_usd": 0.00012, "latency_ms": 812.6, "user_id": "alice",
                           "id": "0c6e2a58-4f0a-4c55-9a59-3d1f1c2b7e11"})
    assert row.split() == ["2026-03-01", "11:45:00", "gpt-4o", "openai", "200", "42",
                           "0.000120", "813", "alice", "0c6e2a58"]
    assert view.format_row({"id": "x"}).split()[0] == "-"


def test_follow_prints_each_new_record_once_and_stops_on_ctrl_c():
    pages = [[{"id": "b"}, {"id": "a"}], [{"id": "c"}, {"id": "b"}, {"id": "a"}],
             [{"id": "d"}, {"id": "c"}, {"id": "b"}]]

    class Scripted:
        def fetch(self, query, limit):
            return pages.pop(0)

    def sleep(_):
        if not pages:
            raise KeyboardInterrupt

    lines: list[str] = []
    view.show(Scripted(), [], 2, True, lines.append, sleep=sleep)
    assert [line.split()[-1] for line in lines[1:]] == ["a", "b", "c", "d"]
