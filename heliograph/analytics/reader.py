"""Analytics: every query the API makes, on its own connections and its own threads.

The read side never shares a connection or a thread with the proxy: its queries run on a
small dedicated thread pool (so a burst of heavy reports waits for its own threads, not
for the loop's default executor the proxy uses), and a bounded number may wait; beyond
that the caller gets a 503 at once rather than a queue that grows without end.

SQL here uses "?" placeholders, rewritten to "%s" for psycopg. Every query is scoped to
one organization, joins included.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any, TypeVar

from heliograph.analytics import (
    _aggregate,
    _lanes,
    _metrics,
    _ratelimits,
    _search_pages,
    _summaries,
    _users,
)
from heliograph.analytics._grouped import active_fields
from heliograph.analytics._where import (
    COMMON_PROPERTY,
    COUNT_PROPERTY_SQL,
    compile_filter,
    decode_cursor,
    encode_cursor,
)
from heliograph.analytics.errors import AnalyticsBusy
from heliograph.analytics.filters import RequestFilter, normalize_timestamp
from heliograph.errors import BadRequest
from heliograph.niceness import set_thread_niceness
from heliograph.store import search
from heliograph.store._schema import BODY_COLUMNS, REQUEST_COLUMNS, row_to_record

MAX_PAGE = 1000
# Bodies in one page of /api/v1/requests?bodies=true: past this the page ends early (its
# next_cursor continues the listing), so one answer cannot run to hundreds of MB.
MAX_PAGE_BODY_CHARS = 8 * 1024 * 1024
_FETCH_CHUNK = 5000  # rows per fetchmany when aggregating, to bound driver buffers
SCAN_THREADS = 1
# Threads (each with its own connection) that run the other parts of a query split in
# parts (_fetch_parts): metrics by user sums every user's rollup rows in two halves.
PART_THREADS = 1
# Queries allowed to wait for an analytics thread, per thread.
_WAITING_PER_THREAD = 16

T = TypeVar("T")
# Words in this share of the bodies or more are "dense" for a search listing (_words_are_dense).
DENSE_WORDS = 0.05
# Listing filters with an index of their own, read in the listing's order.
_WALKED_FILTERS = frozenset({"status", "cache", "user_id", "session_id"})


def _columns(names, alias: str = "r", nulls: tuple[str, ...] = ()) -> str:
    return ", ".join("NULL" if n in nulls else f"{alias}.{n}" for n in names)


# A whole record: its requests row and its bodies (a row of their own since version 5).
_RECORD_COLUMNS = f"{_columns(REQUEST_COLUMNS)}, {_columns(BODY_COLUMNS, alias='b')}"
_WITH_BODIES = (" FROM requests r LEFT JOIN request_bodies b"
                " ON b.organization = r.organization AND b.request_id = r.id")


# Analytics threads run at this niceness: a long scan (in the database library's C code,
# without the GIL) then yields the CPU to the proxy's event loop instead of sharing it.
ANALYTICS_NICENESS = 10


def _lower_priority() -> None:
    set_thread_niceness(ANALYTICS_NICENESS)


@functools.lru_cache(maxsize=256)
def _to_format_style(sql: str) -> str:
    return sql.replace("?", "%s")


class Analytics:
    """connections: SQLiteConnections or PostgresConnections (cursor(), close(), dialect)."""

    def __init__(self, connections: Any, threads: int = 2, use_rollups: bool = True):
        self._db = connections
        # False: every aggregate from raw rows (the rollups' reference, in tests).
        self.use_rollups = use_rollups
        self.dialect = connections.dialect
        self._threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="heliograph-analytics",
                                            initializer=_lower_priority)
        # Queries that scan raw rows get a thread of their own (_lanes.py): quick ones
        # never wait behind them. (open_analytics sizes the connection pool for both.)
        self._scans = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="heliograph-scan",
                                         initializer=_lower_priority)
        self._parts = ThreadPoolExecutor(PART_THREADS, thread_name_prefix="heliograph-part",
                                         initializer=_lower_priority)
        self._in_flight = 0

    async def run(self, query: Callable[..., T], *args: Any) -> T:
        """Run one of this object's queries on the analytics threads. A ValueError (bad
        cursor, timestamp or group_by) is the caller's 400."""
        if self._in_flight >= self._threads * (1 + _WAITING_PER_THREAD):
            raise AnalyticsBusy("too many analytics queries in progress; retry shortly")
        # Imported here: the background host's alerts job reads through this class
        # without an event loop, and asyncio (with ssl) is ~3 MB it would load for nothing.
        import asyncio

        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            lane = (self._executor if _lanes.is_quick(query, args, self.use_rollups)
                    else self._scans)
            return await loop.run_in_executor(lane, functools.partial(query, *args))
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_query") from None
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._scans.shutdown(wait=True, cancel_futures=True)
        self._parts.shutdown(wait=True, cancel_futures=True)
        self._db.close()

    # -- plumbing -----------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.dialect.placeholder == "?" else _to_format_style(sql)

    def _fetchall(self, sql: str, params) -> list[tuple]:
        with self._db.cursor() as cur:
            cur.execute(self._sql(sql), params)
            return cur.fetchall()

    def _fetch_parts(self, queries: list[tuple[str, list]]) -> list[list[tuple]]:
        """Each query's rows, the first run on this thread and the others at the same
        time on the part threads, each on a connection of its own: the database work
        (without the GIL) of one big answer spread over cores."""
        first, *others = queries
        futures = [self._parts.submit(self._fetchall, sql, params) for sql, params in others]
        try:
            rows = [self._fetchall(*first)]
        finally:   # never leave a part running on after this query has failed
            wait(futures)
        return rows + [future.result() for future in futures]

    def _aggregate(self, sql: str, params, fold: Callable[[Iterator[tuple]], T]) -> T:
        """fold(rows) with rows streamed in chunks from a server-side cursor (memory
        bounded by the chunk, whatever the window), inside the query's deadline."""
        with self._db.cursor(stream=True) as cur:
            cur.execute(self._sql(sql), params)

            def rows() -> Iterator[tuple]:
                while chunk := cur.fetchmany(_FETCH_CHUNK):
                    yield from chunk

            return fold(rows())

    # -- records ------------------------------------------------------------------
    def get_request(self, organization: str, request_id: str) -> dict | None:
        rows = self._fetchall(f"SELECT {_RECORD_COLUMNS}{_WITH_BODIES}"
                              " WHERE r.organization = ? AND r.id = ?",
                              (organization, request_id))
        return row_to_record(rows[0]) if rows else None

    def list_requests(self, organization: str, flt: RequestFilter, limit: int = 50,
                      cursor: str | None = None, with_bodies: bool = False,
                      max_body_chars: int = MAX_PAGE_BODY_CHARS
                      ) -> tuple[list[dict], str | None]:
        """Newest first: (records, next_cursor or None). Bodies are None unless
        with_bodies; then the page stops early (with a next_cursor) once its bodies pass
        max_body_chars, always holding at least one record. ValueError for a cursor not
        handed out here."""
        limit = max(1, min(int(limit), MAX_PAGE))
        after = decode_cursor(cursor) if cursor else None
        where, params = self._listing_filter(organization, flt, limit + 1, after)
        if after:
            where += " AND (r.created_at, r.id) < (?, ?)"
            params += list(after)
        order = " ORDER BY r.created_at DESC, r.id DESC"
        if not with_bodies:
            columns = _columns(REQUEST_COLUMNS, nulls=BODY_COLUMNS)
            rows = self._fetchall(f"SELECT {columns} FROM requests r WHERE {where}"
                                  f"{order} LIMIT ?", (*params, limit + 1))
            records = [row_to_record(row) for row in rows[:limit]]
            more = len(rows) > limit  # one more than asked: there is a next page
        else:
            records, more = self._page_with_bodies(organization, where, params, order,
                                                   limit, max_body_chars)
        next_cursor = None
        if more and records:
            last = records[-1]
            next_cursor = encode_cursor(last["created_at"], last["id"])
        return records, next_cursor

    def _listing_filter(self, organization: str, flt: RequestFilter, page: int,
                        after: tuple[str, str] | None) -> tuple[str, list]:
        """compile_filter for one page of `page` records (after the cursor's `after`),
        but a property value matching many records is checked record by record
        (_where.COMMON_PROPERTY) so a page of them stops at its end, and `q` reads the
        text index the way that suits how many records hold its words
        (store/search.py COMMON_MATCHES)."""
        like_ci = self.dialect.like_ci
        common = frozenset(
            name for name, value in (flt.properties or {}).items()
            if self._fetchall(COUNT_PROPERTY_SQL, (organization, str(name).lower(),
                                                   str(value), COMMON_PROPERTY)
                              )[0][0] >= COMMON_PROPERTY)
        q = flt.q
        counting = search.count_matches_sql(like_ci, q) if q else None
        if q is None or counting is None:
            return compile_filter(organization, flt, like_ci, common)
        where, params = compile_filter(organization, replace(flt, q=None), like_ci, common)
        if self._fetchall(*counting)[0][0] < search.COMMON_MATCHES:
            # Few matches: the page is read from them, by id. (As a subquery, both
            # planners took them for many and walked the time index testing every record:
            # 0.6 s on SQLite, 12 s on PostgreSQL for a word in none of 1M records.)
            reading = search.matching_ids_sql(like_ci, organization, q,
                                              search.COMMON_MATCHES)
            found = self._fetchall(*reading) if reading else []
            if not found:
                return "1 = 0", []
            marks = ", ".join("?" * len(found))
            return f"{where} AND r.id IN ({marks})", [*params, *(row[0] for row in found)]
        # SQLite: newest first, window by window (_search_pages), unless a filter with an
        # index of its own (user, session, status, cache) leads the walk: then each of
        # its records is checked on its own.
        fields = active_fields(flt)
        if like_ci == "LIKE" and not fields & _WALKED_FILTERS:
            keyset, keyset_params = where, list(params)
            if after:
                keyset += " AND (r.created_at, r.id) < (?, ?)"
                keyset_params += list(after)
            top = after[0] if after else (normalize_timestamp(flt.until) if flt.until
                                          else None)
            fts_query = search.search_condition(like_ci, organization, q)[1][1]
            # Matches first where only a row can tell (model, provider, comparisons),
            # unless the words are in so many records that checking each record read
            # for that filter finds a page sooner (1M records, `refund order` in ~40%
            # with a model: 40-70 ms that way, 110-200 ms matches first).
            filtered = bool(fields - {"q", "properties"})
            ids = None
            if not (filtered and self._words_are_dense(fts_query)):
                ids = _search_pages.page_ids(self, organization, keyset, keyset_params,
                                             fts_query, flt.since, top, page, filtered)
            if ids is not None:
                if not ids:
                    return "1 = 0", []
                marks = ", ".join("?" * len(ids))
                return (f"r.organization = ? AND r.id IN ({marks})", [organization, *ids])
        test, test_params = search.per_record_condition(like_ci, q)
        return f"{where} AND {test}", params + test_params

    def _words_are_dense(self, fts_query: str) -> bool:
        """Whether the words are in at least DENSE_WORDS of the bodies (SQLite; counted
        up to that many, a few ms)."""
        bodies = self._fetchall("SELECT MAX(seq) FROM request_bodies", ())[0][0] or 0
        cap = max(search.COMMON_MATCHES, int(bodies * DENSE_WORDS))
        return self._fetchall(*search.count_matches_sql_limit("LIKE", fts_query, cap)
                              )[0][0] >= cap

    def _page_with_bodies(self, organization: str, where: str, params: list, order: str,
                          limit: int, max_body_chars: int) -> tuple[list[dict], bool]:
        # Sizes first, then the bodies of only the records that fit: the database never
        # sends (nor the driver buffers) bodies the page will not hold.
        sizes = self._fetchall(
            "SELECT r.id, COALESCE(LENGTH(b.request_body), 0)"
            f" + COALESCE(LENGTH(b.response_body), 0){_WITH_BODIES} WHERE {where}"
            f"{order} LIMIT ?", (*params, limit + 1))
        chosen: list[str] = []
        total = 0
        for request_id, size in sizes[:limit]:
            total += size
            if chosen and total > max_body_chars:
                break
            chosen.append(request_id)
        if not chosen:
            return [], False
        marks = ", ".join("?" * len(chosen))
        rows = self._fetchall(f"SELECT {_RECORD_COLUMNS}{_WITH_BODIES}"
                              f" WHERE r.organization = ? AND r.id IN ({marks}){order}",
                              (organization, *chosen))
        return [row_to_record(row) for row in rows], len(sizes) > len(chosen)

    # -- aggregates (rollups where they answer; see _metrics, _summaries) -------------
    def metrics(self, organization: str, flt: RequestFilter, group_by: str) -> dict:
        return _metrics.metrics(self, organization, flt, group_by)

    def overview(self, organization: str, flt: RequestFilter) -> dict:
        return _metrics.overview(self, organization, flt)

    def users(self, organization: str, flt: RequestFilter) -> list[dict]:
        """Every user with a matching record, most requests first (ties by user_id)."""
        return _users.page(self, organization, flt, _users.UserQuery())[0]

    def users_page(self, organization: str, flt: RequestFilter, sort: str = "requests",
                   order: str | None = None, limit: int = 50, cursor: str | None = None
                   ) -> tuple[list[dict], str | None]:
        """One page of users sorted by `sort` (_users.SORTS; `order` asc/desc, default
        desc but user_id asc), ties by user_id: (page, next_cursor or None).
        ValueError for an unknown sort or order or a cursor not handed out for them."""
        limit = max(1, min(int(limit), MAX_PAGE))
        return _users.page(self, organization, flt,
                           _users.UserQuery(sort, order, limit, cursor))

    def cost_by_user(self, organization: str, flt: RequestFilter, top: int = 10
                     ) -> list[dict]:
        """The `top` users by cost and the records without a user (key None), biggest
        first: [{"key", "requests", "cost_usd"}] (the overview's chart)."""
        return _users.cost_by_user(self, organization, flt, max(1, min(int(top), MAX_PAGE)))

    def user_models(self, organization: str, flt: RequestFilter) -> list[dict]:
        """flt.user_id's requests, errors, error rate and cost by model, most requests
        first: [{"key", "requests", "errors", "error_rate", "cost_usd"}]."""
        if flt.user_id is None:
            raise ValueError("user_models needs a user_id")
        return _users.models_of(self, organization, flt)

    def user(self, organization: str, user_id: str) -> dict | None:
        found = self.users(organization, RequestFilter(user_id=user_id))
        return found[0] if found else None

    def session(self, organization: str, session_id: str) -> dict | None:
        rows = self._fetchall(
            f"SELECT {_columns(REQUEST_COLUMNS, nulls=BODY_COLUMNS)} FROM requests r"
            " WHERE r.organization = ? AND r.session_id = ? ORDER BY r.created_at, r.id",
            (organization, session_id))
        return _aggregate.session_tree(session_id, [row_to_record(row) for row in rows])

    def sessions(self, organization: str, flt: RequestFilter, limit: int = 50,
                 cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Sessions with a record matching the filter, newest activity first:
        (page, next_cursor or None). ValueError for a cursor not handed out here."""
        limit = max(1, min(int(limit), MAX_PAGE))
        return _summaries.sessions(self, organization, flt, limit, cursor)

    def properties(self, organization: str, flt: RequestFilter, name: str | None = None,
                   values_limit: int = 100) -> dict:
        """Property names and their values with requests and cost, most used first."""
        values_limit = max(1, min(int(values_limit), MAX_PAGE))
        return _summaries.properties(self, organization, flt, name, values_limit)

    def ratelimits(self, organization: str, flt: RequestFilter) -> dict:
        """Per provider and model: the latest limits the provider reported, and 429s by
        hour — every provider 429, those a retry or a fallback absorbed included (they
        are in the record's attempts). From the rate-limit rollup where it answers."""
        return _ratelimits.ratelimits(self, organization, flt)
