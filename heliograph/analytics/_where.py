"""RequestFilter → SQL WHERE clause, and the opaque pagination cursor.

SQL here uses "?" placeholders; the reader rewrites them for drivers that want "%s".
Every clause refers to the requests table as `r`, and every clause is scoped to the
caller's organization (property rows included: request ids are unique only within one).
"""

from __future__ import annotations

import base64
import binascii

from heliograph.analytics.conditions import compile_node, escape_like, status_condition
from heliograph.analytics.filters import EQUALITY_KEYS, RequestFilter, normalize_timestamp
from heliograph.store.search import search_condition

__all__ = ("compile_filter", "decode_cursor", "encode_cursor", "escape_like")


# A property value held by this many records or more is "common": a listing (newest
# first, one page) checks each record for it, reading the time index in order and stopping
# at the page's end, instead of collecting every match and sorting them (on 1M records,
# 0.3-2 s for a value in a tenth of them; the check costs ~limit x records/matches probes).
COMMON_PROPERTY = 5000
# The per-record check, by dialect (told apart by the LIKE operator, as store/search.py
# does). PostgreSQL: OFFSET 0 keeps it a per-row check (otherwise the planner turns it into
# a join of every match), and the id compared in the property table's collation so its
# primary key (organization, request_id, name) answers it.
_PER_RECORD_PROPERTY = {
    "LIKE": ("EXISTS (SELECT 1 FROM request_properties p WHERE p.organization = r.organization"
             " AND p.request_id = r.id AND p.name = ? AND p.value = ?)"),
    "ILIKE": ("EXISTS (SELECT 1 FROM request_properties p WHERE p.organization = r.organization"
              ' AND p.name = ? AND p.value = ? AND p.request_id = r.id COLLATE "default"'
              " OFFSET 0)"),
}
COUNT_PROPERTY_SQL = ("SELECT COUNT(*) FROM (SELECT 1 FROM request_properties p"
                      " WHERE p.organization = ? AND p.name = ? AND p.value = ? LIMIT ?) AS found")


def compile_filter(organization: str, flt: RequestFilter, like_ci: str,
                   common_properties: frozenset[str] = frozenset()) -> tuple[str, list]:
    """(WHERE body, params) for the filter, always scoped to the organization.
    like_ci is the dialect's case-insensitive LIKE operator. common_properties: the
    property names whose value is common (COMMON_PROPERTY), checked record by record; for
    listings only (an aggregate over every match is faster the other way)."""
    clauses = ["r.organization = ?"]
    params: list = [organization]
    for key in EQUALITY_KEYS:
        value = getattr(flt, key)
        if value is None:
            continue
        if key == "status":
            clauses.append(status_condition("=", int(value), like_ci))
            continue
        clauses.append(f"r.{key} = ?")
        params.append(value)
    for name, value in (flt.properties or {}).items():
        if name in common_properties:
            clauses.append(_PER_RECORD_PROPERTY[like_ci])
            params += [str(name).lower(), str(value)]
            continue
        # IN (subquery) rather than EXISTS so the planner can start from the
        # (organization, name, value) index when the property is selective.
        clauses.append("r.id IN (SELECT p.request_id FROM request_properties p"
                       " WHERE p.organization = ? AND p.name = ? AND p.value = ?)")
        params += [organization, str(name).lower(), str(value)]
    if flt.since:
        clauses.append("r.created_at >= ?")
        params.append(normalize_timestamp(flt.since))
    if flt.until:
        clauses.append("r.created_at < ?")
        params.append(normalize_timestamp(flt.until))
    if flt.q:  # through the full-text index (store/search.py)
        condition, search_params = search_condition(like_ci, organization, flt.q)
        clauses.append(condition)
        params += search_params
    for node in flt.conditions:
        sql, node_params = compile_node(node, organization, like_ci)
        clauses.append(sql)
        params += node_params
    return " AND ".join(clauses), params


def encode_cursor(created_at: str, request_id: str) -> str:
    raw = f"{created_at}|{request_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(created_at, id) of the last record of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, request_id = raw.split("|", 1)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(f"invalid cursor {cursor!r}") from None
    return created_at, request_id
