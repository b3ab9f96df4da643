"""How a query window is cut into rollup pieces: whole days, whole hours, raw edges."""

from heliograph.analytics._window import Piece, split


def test_a_window_cut_mid_hour_is_days_between_hours_between_raw_edges():
    assert split("2024-06-07T22:17:03.000000Z", "2024-06-10T01:40:00.000000Z",
                 ("day", "hour")) == [
        Piece("raw", "2024-06-07T22:17:03.000000Z", "2024-06-07T23:00:00.000000Z"),
        Piece("hour", "2024-06-07T23", "2024-06-08T00"),
        Piece("day", "2024-06-08", "2024-06-10"),
        Piece("hour", "2024-06-10T00", "2024-06-10T01"),
        Piece("raw", "2024-06-10T01:00:00.000000Z", "2024-06-10T01:40:00.000000Z"),
    ]


def test_aligned_and_open_windows_need_no_raw_rows():
    assert split(None, None, ("day", "hour")) == [Piece("day", None, None)]
    assert split("2024-06-08T00:00:00.000000Z", None, ("hour",)) == [
        Piece("hour", "2024-06-08T00", None)]
    assert split(None, "2024-06-09T05:00:00.000000Z", ("day", "hour")) == [
        Piece("day", None, "2024-06-09"), Piece("hour", "2024-06-09T00", "2024-06-09T05")]


def test_inside_one_unit_only_raw_rows_and_an_empty_window_nothing():
    assert split("2024-06-09T10:05:00.000000Z", "2024-06-09T10:55:00.000000Z",
                 ("day", "hour")) == [
        Piece("raw", "2024-06-09T10:05:00.000000Z", "2024-06-09T10:55:00.000000Z")]
    # Only days kept (the per-user rollup): the partial days are raw rows.
    assert split("2024-06-09T10:05:00.000000Z", "2024-06-11T00:00:00.000000Z", ("day",)) == [
        Piece("raw", "2024-06-09T10:05:00.000000Z", "2024-06-10T00:00:00.000000Z"),
        Piece("day", "2024-06-10", "2024-06-11")]
    assert split("2024-06-09T10:00:00.000000Z", "2024-06-09T10:00:00.000000Z",
                 ("day", "hour")) == []
