"""Analytics: every query the API makes, on its own connections and its own threads.

The read side never shares a connection or a thread with the proxy: its queries run on a
small dedicated thread pool (so a burst of heavy reports waits for its own threads, not
for the loop's default executor the proxy uses), and a bounded number may wait; beyond
that the caller gets a 503 at once rather than a queue that grows without end.

SQL here uses "?" placeholders, rewritten to "%s" for psycopg. Every query is scoped to
one organization, joins included.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from heliograph.analytics import _aggregate
from heliograph.analytics._where import compile_filter, decode_cursor, encode_cursor
from heliograph.analytics.errors import AnalyticsBusy
from heliograph.analytics.filters import RequestFilter
from heliograph.errors import BadRequest
from heliograph.store._schema import BODY_COLUMNS, REQUEST_COLUMNS, row_to_record

MAX_PAGE = 1000
# Bodies in one page of /api/v1/requests?bodies=true: past this the page ends early (its
# next_cursor continues the listing), so one answer cannot run to hundreds of MB.
MAX_PAGE_BODY_CHARS = 8 * 1024 * 1024
_FETCH_CHUNK = 5000  # rows per fetchmany when aggregating, to bound driver buffers
# Queries allowed to wait for an analytics thread, per thread.
_WAITING_PER_THREAD = 16

T = TypeVar("T")


def _columns(names, alias: str = "r", nulls: tuple[str, ...] = ()) -> str:
    return ", ".join("NULL" if n in nulls else f"{alias}.{n}" for n in names)


@functools.lru_cache(maxsize=256)
def _to_format_style(sql: str) -> str:
    return sql.replace("?", "%s")


class Analytics:
    """connections: SQLiteConnections or PostgresConnections (cursor(), close(), dialect)."""

    def __init__(self, connections: Any, threads: int = 2):
        self._db = connections
        self.dialect = connections.dialect
        self._threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="heliograph-analytics")
        self._in_flight = 0

    async def run(self, query: Callable[..., T], *args: Any) -> T:
        """Run one of this object's queries on the analytics threads. A ValueError (bad
        cursor, timestamp or group_by) is the caller's 400."""
        if self._in_flight >= self._threads * (1 + _WAITING_PER_THREAD):
            raise AnalyticsBusy("too many analytics queries in progress; retry shortly")
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, functools.partial(query, *args))
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_query") from None
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._db.close()

    # -- plumbing -----------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.dialect.placeholder == "?" else _to_format_style(sql)

    def _fetchall(self, sql: str, params) -> list[tuple]:
        with self._db.cursor() as cur:
            cur.execute(self._sql(sql), params)
            return cur.fetchall()

    def _aggregate(self, sql: str, params, fold: Callable[[Iterator[tuple]], T]) -> T:
        """fold(rows) with rows streamed in chunks, inside the query's deadline."""
        with self._db.cursor() as cur:
            cur.execute(self._sql(sql), params)

            def rows() -> Iterator[tuple]:
                while chunk := cur.fetchmany(_FETCH_CHUNK):
                    yield from chunk

            return fold(rows())

    # -- records ------------------------------------------------------------------
    def get_request(self, organization: str, request_id: str) -> dict | None:
        rows = self._fetchall(f"SELECT {_columns(REQUEST_COLUMNS)} FROM requests r"
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
        where, params = compile_filter(organization, flt, self.dialect.like_ci)
        if cursor:
            where += " AND (r.created_at, r.id) < (?, ?)"
            params += list(decode_cursor(cursor))
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

    def _page_with_bodies(self, organization: str, where: str, params: list, order: str,
                          limit: int, max_body_chars: int) -> tuple[list[dict], bool]:
        # Sizes first, then the bodies of only the records that fit: the database never
        # sends (nor the driver buffers) bodies the page will not hold.
        sizes = self._fetchall(
            "SELECT r.id, COALESCE(LENGTH(r.request_body), 0)"
            f" + COALESCE(LENGTH(r.response_body), 0) FROM requests r WHERE {where}"
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
        rows = self._fetchall(f"SELECT {_columns(REQUEST_COLUMNS)} FROM requests r"
                              f" WHERE r.organization = ? AND r.id IN ({marks}){order}",
                              (organization, *chosen))
        return [row_to_record(row) for row in rows], len(sizes) > len(chosen)

    # -- aggregates ---------------------------------------------------------------
    def metrics(self, organization: str, flt: RequestFilter, group_by: str) -> dict:
        kind, detail = _aggregate.parse_group_by(group_by)
        where, params = compile_filter(organization, flt, self.dialect.like_ci)
        join = ""
        if kind == "dimension":
            group_column = f"r.{detail}"
        elif kind == "time":
            group_column = "r.created_at"
        else:  # property: at most one row per (request, name), so the join adds no rows
            join = (" LEFT JOIN request_properties g ON g.request_id = r.id"
                    " AND g.organization = r.organization AND g.name = ?")
            group_column = "g.value"
            params = [detail, *params]
        sql = (f"SELECT {_columns(_aggregate.AGGREGATE_COLUMNS)}, {group_column}"
               f" FROM requests r{join} WHERE {where}")
        return self._aggregate(sql, params, lambda rows: _aggregate.metrics_from_rows(
            rows, kind, detail))

    def users(self, organization: str, flt: RequestFilter) -> list[dict]:
        where, params = compile_filter(organization, flt, self.dialect.like_ci)
        sql = (f"SELECT {_columns(_aggregate.USER_COLUMNS)} FROM requests r"
               f" WHERE {where} AND r.user_id IS NOT NULL")
        return self._aggregate(sql, params, _aggregate.users_from_rows)

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
        where, params = compile_filter(organization, flt, self.dialect.like_ci)
        sql = ("SELECT r.session_id, r.session_name, r.cost_usd, r.cost_known, r.created_at"
               f" FROM requests r WHERE {where} AND r.session_id IS NOT NULL")
        found = self._aggregate(sql, params, _aggregate.sessions_from_rows)
        if cursor:
            after = decode_cursor(cursor)
            found = [s for s in found if (s["last_at"], s["session_id"]) < after]
        page = found[:limit]
        more = len(found) > limit
        return page, (encode_cursor(page[-1]["last_at"], page[-1]["session_id"])
                      if more else None)

    def ratelimits(self, organization: str, flt: RequestFilter) -> dict:
        """Per provider and model: the latest limits the provider reported, and 429s by
        hour — every provider 429, those a retry or a fallback absorbed included (they
        are in the record's attempts)."""
        where, params = compile_filter(organization, flt, self.dialect.like_ci)
        sql = ("SELECT r.provider, r.model_used, r.created_at, r.status, r.ratelimit_json,"
               " r.attempts_json"
               f" FROM requests r WHERE {where} AND r.provider IS NOT NULL"
               " AND (r.ratelimit_json IS NOT NULL OR r.status = 429"
               " OR r.attempts_json LIKE ?)"
               " ORDER BY r.created_at")
        params = [*params, _aggregate.ATTEMPT_429_PATTERN]
        return self._aggregate(sql, params, _aggregate.ratelimits_from_rows)
