"""A time window [since, until) split into pieces the rollups can answer exactly: whole
days from a daily table, whole hours from an hourly one, and the minutes at either edge
from raw rows (a bounded amount: under an hour, or under a day where only days are kept).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

_HOUR = _dt.timedelta(hours=1)
_DAY = _dt.timedelta(days=1)
_STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Piece:
    grain: str              # "raw", "hour" or "day"
    lo: str | None          # inclusive; None: unbounded. raw: a stored created_at;
    hi: str | None          # exclusive. hour: 'YYYY-MM-DDTHH'; day: 'YYYY-MM-DD'.

    def bucket_clauses(self, clauses: list[str], params: list) -> None:
        """Append a rollup table's `bucket` bounds for this piece."""
        if self.lo is not None:
            clauses.append("bucket >= ?")
            params.append(self.lo)
        if self.hi is not None:
            clauses.append("bucket < ?")
            params.append(self.hi)


def _parse(ts: str) -> _dt.datetime:
    return _dt.datetime.strptime(ts, _STORED)


def _stored(moment: _dt.datetime) -> str:
    return moment.strftime(_STORED)


# A dekad: the 1st-10th, 11th-20th or 21st-last day of a month (the per-user rollup's
# coarsest bucket, labelled 'YYYY-MM-1', '-2', '-3': they sort as they follow).
_DEKAD_STARTS = (1, 11, 21)


def _floor(moment: _dt.datetime, grain: str) -> _dt.datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    if grain == "dekad":
        return moment.replace(day=max(d for d in _DEKAD_STARTS if d <= moment.day), hour=0)
    return moment.replace(hour=0) if grain == "day" else moment


def _ceil(moment: _dt.datetime, grain: str) -> _dt.datetime:
    floor = _floor(moment, grain)
    if floor == moment:
        return floor
    if grain == "dekad":
        if floor.day < _DEKAD_STARTS[-1]:
            return floor.replace(day=floor.day + 10)
        return (floor.replace(day=28) + _dt.timedelta(days=4)).replace(day=1)
    return floor + (_DAY if grain == "day" else _HOUR)


def _label(moment: _dt.datetime | None, grain: str) -> str | None:
    if moment is None:
        return None
    if grain == "dekad":   # moment is a dekad's first day
        return moment.strftime("%Y-%m-") + str(_DEKAD_STARTS.index(moment.day) + 1)
    return moment.strftime("%Y-%m-%d" if grain == "day" else "%Y-%m-%dT%H")


def split(since: str | None, until: str | None, grains: tuple[str, ...]) -> list[Piece]:
    """Pieces covering [since, until) exactly, coarsest grain first where it fits.
    grains: the rollup grains available, coarsest first, e.g. ("dekad", "day", "hour"),
    ("day", "hour"), ("hour",) or ("day",).
    Timestamps are in the stored form (filters.normalize_timestamp)."""
    start = _parse(since) if since else None
    end = _parse(until) if until else None
    if start is not None and end is not None and start >= end:
        return []
    pieces: list[Piece] = []
    _cover(start, end, since, until, list(grains), pieces)
    return pieces


def _cover(start: _dt.datetime | None, end: _dt.datetime | None, since: str | None,
           until: str | None, grains: list[str], out: list[Piece]) -> None:
    """Cover [start, end) (None: unbounded), given as stored strings since/until too."""
    if not grains:
        out.append(Piece("raw", since, until))
        return
    grain, finer = grains[0], grains[1:]
    lo = _ceil(start, grain) if start is not None else None
    hi = _floor(end, grain) if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        _cover(start, end, since, until, finer, out)   # no whole unit inside
        return
    if start is not None and lo is not None and start < lo:
        _cover(start, lo, since, _stored(lo), finer, out)
    out.append(Piece(grain, _label(lo, grain), _label(hi, grain)))
    if end is not None and hi is not None and hi < end:
        _cover(hi, end, _stored(hi), until, finer, out)
