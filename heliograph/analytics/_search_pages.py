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

# Records are read from `requests` (CROSS JOIN: SQLite keeps it the outer loop, so its
# own indexes serve the other filters and the order), each one's body seq from the
# bodies' (organization, request_id) index, and the seq checked against the window's
# matches, which the index gives once as a list of rowids: no body row is read (each
# is pages of text), and no full-text lookup is made per record. `+b.seq`: as an index
# term, SQLite took the list as the third column of the bodies' key and sought every
# match for every record read (2,700 records, a word in most: 0.66 s a window instead of
# 5 ms); so the record's body is found by its key and its seq looked up in the list.
_MATCHING = (" CROSS JOIN request_bodies b WHERE b.organization = r.organization"
             " AND b.request_id = r.id AND +b.seq IN (SELECT rowid FROM request_search"
             " WHERE request_search MATCH ? AND rowid >= ? AND rowid <= ?) AND ")
# With filters that read the record's row (model, status, ...), the window's matches are
# found first from the indexes alone, and only their rows read: a row is a random read of
# a 1 KB record, the index steps are not. (LIMIT -1 keeps SQLite from merging the two.)
_MATCHES_FIRST = ("SELECT r.created_at, r.id FROM (SELECT r.id AS id FROM requests r"
                  f"{_MATCHING}r.organization = ?{{window}} LIMIT -1) m"
                  " CROSS JOIN requests r WHERE r.organization = ? AND r.id = m.id AND ")


def _parse(ts: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(ts, _STORED)
    except (TypeError, ValueError):
        return None


def page_ids(reader, organization: str, where: str, params: list, fts_query: str,
             since: str | None, top: str | None, limit: int, filtered: bool
             ) -> list[str] | None:
    """Ids of the newest `limit` records (at most) matching `where` (the listing's other
    filters, keyset included) whose bodies match fts_query, newest first. `top`: no
    matching record is newer (the cursor's or until's time; None: the newest record's).
    None when the log's times cannot be split into windows (not in the stored form):
    the caller checks record by record instead. filtered: `where` has conditions beyond
    the organization, the time and the keyset (conditions on the record's row)."""
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
            in_window = window.replace("created_at", "r.created_at")
            matching = [fts_query, seqs[0], seqs[1]]
            if filtered:
                head = _MATCHES_FIRST.format(window=in_window)
                matching += [organization, *window_params, organization]
            else:
                head = f"SELECT r.created_at, r.id FROM requests r{_MATCHING}"
            found += reader._fetchall(
                f"{head}{where}{in_window} ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
                [*matching, *params, *window_params, limit - len(found)])
        if len(found) >= limit or lo <= oldest:
            return [request_id for _at, request_id in found]
        hi, size = lo, size * 2
        lo_at = lo_at - size
