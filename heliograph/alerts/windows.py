"""Time windows of alert rules and budget periods.

Rolling windows (`1h`, `1d`, `7d`, `30d`) end now. Calendar windows (`day`, `week`,
`month`) start at the last midnight, Monday midnight or first of the month in the
configured time zone ([alerts] timezone), so "today" means the team's today, and end
when the next one starts: that is when a budget resets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ROLLING_S = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
CALENDAR = ("day", "week", "month")
WINDOWS = (*ROLLING_S, *CALENDAR)


@dataclass(frozen=True)
class Span:
    start: float        # Unix seconds, inclusive
    end: float          # Unix seconds: now (rolling) or the next period's start (calendar)
    rolling: bool

    @property
    def length_s(self) -> float:
        return self.end - self.start


def span(window: str, now: float, timezone: str = "UTC") -> Span:
    """The window containing `now`."""
    if window in ROLLING_S:
        return Span(now - ROLLING_S[window], now, True)
    if window not in CALENDAR:
        raise ValueError(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
    zone = time_zone(timezone)
    local = dt.datetime.fromtimestamp(now, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        start = midnight
        nxt = _add_days(start, 1)
    elif window == "week":  # ISO weeks start on Monday
        start = _add_days(midnight, -local.weekday())
        nxt = _add_days(start, 7)
    else:
        start = midnight.replace(day=1)
        nxt = (start.replace(year=start.year + 1, month=1) if start.month == 12
               else start.replace(month=start.month + 1))
    return Span(start.timestamp(), nxt.timestamp(), False)


def time_zone(name: str) -> dt.tzinfo:
    """The zone by its IANA name. UTC, the default, is the datetime module's: zoneinfo
    (and sysconfig, for the tz database's path) cost every worker and the host ~0.3 MB
    RSS, which budgets and alert rules in UTC never need (bench/README.md, session 15)."""
    if name == "UTC":
        return dt.UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _add_days(moment: dt.datetime, days: int) -> dt.datetime:
    # Calendar arithmetic on the wall clock (a DST day is 23 or 25 hours long), then
    # the offset that applies on the new date.
    naive = moment.replace(tzinfo=None) + dt.timedelta(days=days)
    return naive.replace(tzinfo=moment.tzinfo)
