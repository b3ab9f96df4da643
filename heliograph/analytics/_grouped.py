"""Grouped totals over a filtered window, from rollups where they can answer and from raw
rows aggregated by SQL where they cannot; never Python over every row.

A rollup family answers a query when every filter it is given is one of its key columns
(see choose()); anything else (text search, comparison conditions, two dimensions no table
holds together) goes to raw rows, grouped and summed by the database. Both paths give
Totals of the same shape, so their numbers agree to the bin of a percentile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from heliograph.analytics._narrow import Narrow
from heliograph.analytics._packed import Packing
from heliograph.analytics._totals import ROLLUP_COLUMNS, Totals, rollup_select, widener
from heliograph.analytics._where import compile_filter
from heliograph.analytics._window import Piece, split
from heliograph.analytics.filters import RequestFilter
from heliograph.store._rollups import raw_groups_sql


@dataclass(frozen=True)
class Family:
    """Rollup tables of one kind: by grain, the filters they take (filter → column)."""

    tables: dict[str, str]
    filters: dict[str, str]


MAIN = Family({"day": "rollup_daily", "hour": "rollup_hourly"},
              {"model": "model", "provider": "provider", "status": "status",
               "cache": "cache"})
# The same counts without the dimensions: far fewer rows for an unfiltered query.
TOTALS = Family({"day": "rollup_daily_totals", "hour": "rollup_hourly_totals"}, {})
PROPERTY = Family({"day": "rollup_property_daily", "hour": "rollup_property_hourly"}, {})
USER = Family({"dekad": "rollup_user_dekad", "day": "rollup_user_daily",
               "hour": "rollup_user_hourly"},
              {"user_id": "user_id"})

_WINDOW = frozenset({"since", "until"})


def active_fields(flt: RequestFilter) -> set[str]:
    """The filter's fields that restrict anything beyond the time window. Any field added
    to RequestFilter later counts too, so a filter no rollup knows falls back to raw rows."""
    active = set()
    for spec in dataclasses.fields(flt):
        if spec.name in _WINDOW:
            continue
        default = (spec.default_factory() if spec.default_factory is not dataclasses.MISSING
                   else spec.default)
        if getattr(flt, spec.name) != default:
            active.add(spec.name)
    return active


@dataclass(frozen=True)
class Grouping:
    """What to group by: the key columns in rollup tables and the expressions over raw
    rows `r` (empty: one group, keyed None; one column: its value; more: a tuple)."""

    rollup_key: tuple[str, ...] = ()
    raw_key: tuple[str, ...] = ()
    # Raw rows joined with their properties as g: "left" keeps records without the
    # property (grouped under null), "inner" only those with it. PROPERTY plans join inner.
    join: str | None = None
    property_name: str | None = None   # only this property's rows are joined


@dataclass(frozen=True)
class Plan:
    family: Family | None               # None: raw rows only
    grains: tuple[str, ...] = ()
    property_name: str | None = None    # PROPERTY: the name (its value filter below)
    property_value: str | None = None


def collect(reader, organization: str, flt: RequestFilter, plan: Plan,
            grouping: Grouping, edges: SharedEdges | None = None,
            columns: tuple[str, ...] = ROLLUP_COLUMNS, narrow: Narrow | None = None,
            packing: Packing | None = None) -> dict:
    """{group key: Totals} over the window, piece by piece. edges: the window's raw
    pieces already read (shared_edges), for a grouping among their keys. columns: the
    rollup columns to read (Totals.shown_columns); the others are left 0. narrow: a
    Narrow of `columns`, to keep a group only the rollups hold as its summed row (a tuple
    of those columns) instead of a Totals. packing: a Packing of `columns`, to sum the
    rollups' latency bins packed (SQLite)."""
    groups: dict = _NarrowGroups(narrow) if narrow is not None else {}
    pieces = (split(flt.since, flt.until, plan.grains) if plan.family is not None
              else [Piece("raw", flt.since, flt.until)])
    rollup_pieces = [piece for piece in pieces if piece.grain != "raw"]
    if rollup_pieces:
        _rollup_pieces(reader, organization, flt, plan, grouping, rollup_pieces, groups,
                       columns, narrow is not None, packing)
    if edges is not None and edges.serves(plan, grouping):
        edges.add_to(groups, grouping)
        return groups
    for piece in pieces:
        if piece.grain == "raw":
            _raw_piece(reader, organization, flt, plan, grouping, piece, groups)
    return groups


@dataclass(frozen=True)
class SharedEdges:
    """A window's raw pieces (the minutes past its whole hours) read once, grouped by
    several keys at a time, for a caller that groups one window several ways: the
    overview groups by day, model and provider, and read the last partial hour three
    times (26,000 records each at 10M a month: ~0.2 s apiece under load)."""

    grains: tuple[str, ...]
    keys: tuple[str, ...]          # raw key expressions, in the rows' order
    rows: list[tuple]

    def serves(self, plan: Plan, grouping: Grouping) -> bool:
        # The same pieces (grains), a plain filter on requests (the main rollup's: no
        # property join, no user-only rows), and a key among ours.
        return (plan.family in (MAIN, TOTALS) and plan.grains == self.grains
                and grouping.join is None and len(grouping.raw_key) == 1
                and grouping.raw_key[0] in self.keys)

    def add_to(self, groups: dict, grouping: Grouping) -> None:
        i, n = self.keys.index(grouping.raw_key[0]), len(self.keys)
        for row in self.rows:
            _group(groups, row[i]).add_raw(row[n], row[n + 1:])


def shared_edges(reader, organization: str, flt: RequestFilter, grains: tuple[str, ...],
                 keys: tuple[str, ...]) -> SharedEdges:
    """The raw pieces of [flt.since, flt.until) split by `grains`, grouped by all of
    `keys` at once (one scan each, however many groupings use them)."""
    rows: list[tuple] = []
    named = {f"k{i}": expr for i, expr in enumerate(keys)}
    for piece in split(flt.since, flt.until, grains):
        if piece.grain == "raw":
            window = dataclasses.replace(flt, since=piece.lo, until=piece.hi)
            where, params = compile_filter(organization, window, reader.dialect.like_ci)
            rows += reader._fetchall(raw_groups_sql(named, "requests r", where), params)
    return SharedEdges(grains, keys, rows)


def _group(groups: dict, key) -> Totals:
    found = groups.get(key)
    if found is None:
        found = groups[key] = Totals()
    elif type(found) is tuple:   # a Narrow row: something is added to it
        found = groups[key] = groups.narrow.totals(found)   # type: ignore[attr-defined]
    return found


class _NarrowGroups(dict):
    """collect()'s groups when some are kept as Narrow rows (_group makes them Totals)."""

    def __init__(self, narrow: Narrow):
        super().__init__()
        self.narrow = narrow


def _rollup_pieces(reader, organization: str, flt: RequestFilter, plan: Plan,
                   grouping: Grouping, pieces: list[Piece], groups: dict,
                   wanted: tuple[str, ...] = ROLLUP_COLUMNS, as_rows: bool = False,
                   packing: Packing | None = None) -> None:
    """The rollup rows of every piece (dekads, days, hours) in one UNION ALL, summed per
    group by the database: each group reaches Python as one row. (On 5,000 users over 30
    days, three pieces queried apart sent ~12,000 rows of 59 columns to Python, and
    converting them cost more than the database's sort of the union.)"""
    assert plan.family is not None
    keys = grouping.rollup_key
    columns = ", ".join([*keys, packing.inner() if packing is not None else ", ".join(wanted)])
    sums = packing.outer() if packing is not None else rollup_select(wanted)
    parts: list[tuple[str, list]] = []
    for part_clause, part_params in _user_halves(reader, organization, flt, plan, keys):
        selects, params = [], []
        for piece in pieces:
            clauses, piece_params = _piece_scope(organization, flt, plan, piece)
            if part_clause:
                clauses.append(part_clause)
                piece_params += part_params
            selects.append(f"SELECT {columns} FROM {plan.family.tables[piece.grain]}"
                           f" WHERE {' AND '.join(clauses)}")
            params += piece_params
        parts.append((f"SELECT {''.join(k + ', ' for k in keys)}{sums}"
                      f" FROM ({' UNION ALL '.join(selects)}) s"
                      + (f" GROUP BY {', '.join(keys)}" if keys else ""), params))
    n = len(keys)
    widen = None if wanted == ROLLUP_COLUMNS else widener(wanted)
    rows = reader._fetch_parts(parts) if len(parts) > 1 else [reader._fetchall(*parts[0])]
    if packing is not None and not all(packing.check(row[n:]) for part in rows for row in part):
        # A bin overflowed its field (records came in since the total was read): the
        # plain sums instead.
        _rollup_pieces(reader, organization, flt, plan, grouping, pieces, groups, wanted,
                       as_rows)
        return
    if as_rows and n == 1:   # kept as read (Narrow rows): one per key, never NULL sums
        for part in rows:
            groups.update((row[0], row[1:]) for row in part)
        return
    for row in (row for part in rows for row in part):
        if row[n] is None:   # no rows at all (an aggregate without GROUP BY)
            continue
        # The first source of every group (raw edges come after): one row per key.
        values = row[n:] if widen is None else widen(row[n:])
        groups[_key(row, n)] = Totals.from_rollup(values)


# An organization with this many users has its per-user sums made in two halves at once.
SPLIT_USERS = 1000


def _user_halves(reader, organization: str, flt: RequestFilter, plan: Plan,
                 keys: tuple[str, ...]) -> list[tuple[str, list]]:
    """Grouping every user (metrics by user_id over a window: ~30,000 rollup rows on
    5,000 users, summed by the database in ~0.2 s): the users below the organization's
    middle user_id and the rest, as (clause, params) per part, each summed on its own
    connection at the same time (Analytics._fetch_parts). The parts hold different users,
    so no group is in two. One part ('') for anything else, or few users."""
    if plan.family is not USER or keys != ("user_id",) or flt.user_id is not None:
        return [("", [])]
    count = reader._fetchall("SELECT COUNT(*) FROM rollup_users WHERE organization = ?",
                             [organization])[0][0]
    if count < SPLIT_USERS:
        return [("", [])]
    middle = reader._fetchall("SELECT user_id FROM rollup_users WHERE organization = ?"
                              " ORDER BY user_id LIMIT 1 OFFSET ?",
                              [organization, count // 2])[0][0]
    return [("user_id < ?", [middle]), ("user_id >= ?", [middle])]


def _piece_scope(organization: str, flt: RequestFilter, plan: Plan, piece: Piece
                 ) -> tuple[list[str], list]:
    assert plan.family is not None
    clauses, params = ["organization = ?"], [organization]
    for field, column in plan.family.filters.items():
        value = getattr(flt, field)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if plan.property_name is not None:
        clauses.append("name = ?")
        params.append(plan.property_name)
        if plan.property_value is not None:
            clauses.append("value = ?")
            params.append(plan.property_value)
    piece.bucket_clauses(clauses, params)
    return clauses, params


def _key(row: Sequence, n: int):
    if n == 0:
        return None
    return row[0] if n == 1 else tuple(row[:n])


def _raw_piece(reader, organization: str, flt: RequestFilter, plan: Plan,
               grouping: Grouping, piece: Piece, groups: dict) -> None:
    window = dataclasses.replace(flt, since=piece.lo, until=piece.hi)
    where, params = compile_filter(organization, window, reader.dialect.like_ci)
    source, source_params = "requests r", []
    if plan.family is PROPERTY or grouping.join is not None:
        left = grouping.join == "left"
        name = grouping.property_name or plan.property_name
        source = _property_source(reader.dialect.name, left, name is not None,
                                  edge=plan.family is not None)
        source_params = [name] if name is not None else []
        if plan.property_value is not None:
            where += " AND g.value = ?"
            params.append(plan.property_value)
    if plan.family is USER:
        where += " AND r.user_id IS NOT NULL"   # as the user rollup counts
    keys = {f"k{i}": expr for i, expr in enumerate(grouping.raw_key)}
    n = len(keys)
    sql = raw_groups_sql(keys, source, where)
    for row in reader._fetchall(sql, [*source_params, *params]):
        _group(groups, _key(row, n)).add_raw(row[n], row[n + 1:])


def _property_source(dialect: str, left: bool, named: bool, edge: bool) -> str:
    """requests r joined with their properties g (of one name when `named`: a "?").
    On PostgreSQL the edge of a window (under an hour or a day of records) looks each
    record's properties up by primary key (a LATERAL nested loop): the planner would
    hash-join every row of the property instead (0.4-0.6 s on 1M records), and
    requests.id is compared in the properties' collation ("C" is the requests')."""
    if dialect == "postgres" and edge:
        inner = ("SELECT g.name, g.value FROM request_properties g"
                 " WHERE g.organization = r.organization"
                 ' AND g.request_id = r.id COLLATE "default"'
                 + (" AND g.name = ?" if named else "")
                 + " OFFSET 0")   # kept a subquery: else it is flattened into the hash join
        return f"requests r {'LEFT JOIN' if left else 'JOIN'} LATERAL ({inner}) g ON TRUE"
    source = (f"requests r {'LEFT JOIN' if left else 'JOIN'} request_properties g"
              " ON g.request_id = r.id AND g.organization = r.organization")
    return source + (" AND g.name = ?" if named else "")


def merge(totals: Sequence[Totals]) -> Totals:
    """One Totals summing these: column by column (in C), however many groups."""
    out = Totals()
    if not totals:
        return out
    out.sums = [sum(column) for column in zip(*(one.sums for one in totals))]
    out.hist = [sum(column) for column in zip(*(one.hist for one in totals))]
    lows = [lo for one in totals if (lo := one.lat_min) is not None]
    highs = [hi for one in totals if (hi := one.lat_max) is not None]
    out._extremes(min(lows, default=None), max(highs, default=None))
    return out


def window_total(reader, organization: str, flt: RequestFilter) -> Totals:
    """Every record in the filter's window (its other fields ignored): from the main
    rollup, so it costs what a grouped query does."""
    plain = RequestFilter(since=flt.since, until=flt.until)
    found = collect(reader, organization, plain, Plan(TOTALS, ("day", "hour")), Grouping())
    return found.get(None) or Totals()
