"""RequestFilter → SQL WHERE clause, and the opaque pagination cursor.

SQL here uses "?" placeholders; the reader rewrites them for drivers that want "%s".
Every clause refers to the requests table as `r`, and every clause is scoped to the
caller's organization (property rows included: request ids are unique only within one).
"""

from __future__ import annotations

import base64
import binascii

from heliograph.analytics.conditions import compile_node, escape_like
from heliograph.analytics.filters import EQUALITY_KEYS, RequestFilter, normalize_timestamp
from heliograph.store.search import search_condition

__all__ = ("compile_filter", "decode_cursor", "encode_cursor", "escape_like")


def compile_filter(organization: str, flt: RequestFilter, like_ci: str
                   ) -> tuple[str, list]:
    """(WHERE body, params) for the filter, always scoped to the organization.
    like_ci is the dialect's case-insensitive LIKE operator."""
    clauses = ["r.organization = ?"]
    params: list = [organization]
    for key in EQUALITY_KEYS:
        value = getattr(flt, key)
        if value is not None:
            clauses.append(f"r.{key} = ?")
            params.append(int(value) if key == "status" else value)
    for name, value in (flt.properties or {}).items():
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
