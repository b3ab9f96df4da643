"""One newest-first page of a text search for a word in many records, on SQLite.

Checking the records one by one, newest first (the per-record condition of
store/search.py), costs a full-text lookup per record read: for a word in 1% of the
records a page of 50 read ~5,000 and took ~0.5 s on 1M records, and seconds where the
index lagged behind the log. Instead the log is read in time windows, newest first (an
hour, then two, four, ... back to `since` or the oldest record), and in each window the
full-text index is asked only for the bodies stored within it: the FTS5 rowid is the
body's `seq`, and the seqs of a window's bodies are one range, read from the bodies'
created_at index. Each window's matches are all of them (exact, whatever order bodies
were stored in); the walk stops as soon as the page is full.
"""

from __future__ import annotations

import datetime as _dt

from heliograph.analytics.filters import normalize_timestamp

_STORED = "%Y-%m-%dT%H:%M:%S.%fZ"
FIRST_WINDOW = _dt.timedelta(hours=1)

_MATCHES_IN = ("r.id IN (SELECT b.request_id FROM request_bodies b WHERE b.organization = ?"
               " AND b.seq IN (SELECT rowid FROM request_search WHERE request_search MATCH ?"
               " AND rowid >= ? AND rowid <= ?))")


def _parse(ts: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(ts, _STORED)
    except (TypeError, ValueError):
        return None


def page_ids(reader, organization: str, where: str, params: list, fts_query: str,
             since: str | None, top: str | None, limit: int) -> list[str] | None:
    """Ids of the newest `limit` records (at most) matching `where` (the listing's other
    filters, keyset included) whose bodies match fts_query, newest first. `top`: no
    matching record is newer (the cursor's or until's time; None: the newest record's).
    None when the log's times cannot be split into windows (not in the stored form):
    the caller checks record by record instead."""
    # Two reads of one end of the time index each (MIN and MAX in one query scan it).
    bounds = [reader._fetchall("SELECT r.created_at FROM requests r WHERE r.organization = ?"
                               f" ORDER BY r.created_at {way}, r.id {way} LIMIT 1",
                               (organization,)) for way in ("ASC", "DESC")]
    if not bounds[0]:
        return []
    bounds = [bounds[0][0][0], bounds[1][0][0]]
    oldest = max(bounds[0], normalize_timestamp(since)) if since else bounds[0]
    top_at = _parse(top or bounds[1])
    if top_at is None or _parse(oldest) is None:
        return None
    found: list[tuple[str, str]] = []
    hi: str | None = None                      # the first window is open above
    size = FIRST_WINDOW
    lo_at = top_at - size
    while True:
        lo = max(lo_at.strftime(_STORED), oldest)
        window = " AND created_at >= ?" + (" AND created_at < ?" if hi else "")
        window_params = [lo, hi] if hi else [lo]
        seqs = reader._fetchall("SELECT MIN(seq), MAX(seq) FROM request_bodies"
                                f" WHERE {window[5:]}", window_params)[0]
        if seqs[0] is not None:
            found += reader._fetchall(
                f"SELECT r.created_at, r.id FROM requests r WHERE {where}"
                f"{window.replace('created_at', 'r.created_at')} AND {_MATCHES_IN}"
                " ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
                [*params, *window_params, organization, fts_query, seqs[0], seqs[1],
                 limit - len(found)])
        if len(found) >= limit or lo <= oldest:
            return [request_id for _at, request_id in found]
        hi, size = lo, size * 2
        lo_at = lo_at - size
