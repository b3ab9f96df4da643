"""General filter conditions — (field, operator, value) leaves joined by and/or — and
their SQL.

They carry what the fixed filters of RequestFilter cannot say: comparisons
(`latency_gt=100` in a query string) and Helicone's filter trees (POST /v1/request/query,
translated in analytics/helicone_tree.py). Fields are the query API's own names, mapped
here to columns of the requests table (`r`), or `property.<name>` for a custom property.
Every value is a bound parameter; only names from FIELDS ever reach the SQL text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import eq, ge, gt, le, lt
from typing import Any

from heliograph.errors import BadRequest
from heliograph.store._schema_v18 import COMMON_STATUS

NUMBER, TIME, TEXT, BOOL, BODY = "number", "time", "text", "bool", "body"
# field → (column, kind)
FIELDS: dict[str, tuple[str, str]] = {
    "latency": ("latency_ms", NUMBER), "ttft": ("ttft_ms", NUMBER),
    "cost": ("cost_usd", NUMBER), "tokens": ("total_tokens", NUMBER),
    "prompt_tokens": ("prompt_tokens", NUMBER),
    "completion_tokens": ("completion_tokens", NUMBER),
    "cached_tokens": ("cached_tokens", NUMBER),
    "cache_write_tokens": ("cache_write_tokens", NUMBER),
    "status": ("status", NUMBER),
    "created_at": ("created_at", TIME),
    **{name: (name, TEXT) for name in (
        "id", "model", "model_used", "provider", "path", "user_id", "session_id",
        "session_name", "session_path", "error", "key_id", "cache")},
    "feedback": ("feedback", BOOL),
    "request_body": ("request_body", BODY), "response_body": ("response_body", BODY),
}
PROPERTY_PREFIX = "property."
OPERATORS: dict[str, frozenset[str]] = {
    NUMBER: frozenset({"eq", "ne", "gt", "gte", "lt", "lte"}),
    TIME: frozenset({"eq", "ne", "gt", "gte", "lt", "lte"}),
    TEXT: frozenset({"eq", "ne", "like", "ilike", "contains", "not_contains"}),
    BOOL: frozenset({"eq", "ne"}),
    BODY: frozenset({"contains", "not_contains"}),
}
_COMPARE = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
MAX_TEXT_CHARS = 4096
# Case-sensitive LIKE per dialect, keyed by its case-insensitive one (Dialect.like_ci):
# PostgreSQL's LIKE is case-sensitive; SQLite's is not, GLOB is.
_CASE_SENSITIVE_LIKE = {"ILIKE": "LIKE", "LIKE": "GLOB"}


@dataclass(frozen=True)
class Condition:
    field: str       # a FIELDS name or property.<name> (lower-cased)
    op: str          # one of OPERATORS[kind]
    value: Any


@dataclass(frozen=True)
class Branch:
    operator: str    # "and" | "or"
    children: tuple[Node, ...]


Node = Condition | Branch


def kind_of(field: str) -> str:
    if field.startswith(PROPERTY_PREFIX):
        return TEXT
    found = FIELDS.get(field)
    if found is None:
        raise BadRequest(f"unknown filter field {field!r}; fields: {', '.join(sorted(FIELDS))}"
                         ", property.<Name>", code="invalid_filter")
    return found[1]


def condition(field: str, op: str, value: Any) -> Condition:
    """A checked condition: a 400 naming what is wrong, never a database error later."""
    if field.startswith(PROPERTY_PREFIX):
        name = field[len(PROPERTY_PREFIX):].lower()
        if not name:
            raise BadRequest("property filters need a name: property.<Name>",
                             code="invalid_filter")
        field = PROPERTY_PREFIX + name
    kind = kind_of(field)
    if op not in OPERATORS[kind]:
        raise BadRequest(f"{field} takes the operators {', '.join(sorted(OPERATORS[kind]))},"
                         f" not {op!r}", code="invalid_filter")
    return Condition(field, op, _checked_value(field, kind, value))


def _checked_value(field: str, kind: str, value: Any) -> Any:
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise BadRequest(f"{field} compares with a number, got {value!r}"[:300],
                             code="invalid_filter")
        return value
    if kind == BOOL:
        if not isinstance(value, bool):
            raise BadRequest(f"{field} compares with true or false, got {value!r}"[:300],
                             code="invalid_filter")
        return value
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS or "\x00" in value:
        raise BadRequest(f"{field} compares with a string of at most {MAX_TEXT_CHARS} "
                         f"characters (no NUL), got {value!r}"[:300], code="invalid_filter")
    if kind == TIME:
        from heliograph.analytics.filters import normalize_timestamp
        try:
            return normalize_timestamp(value)
        except ValueError as exc:
            raise BadRequest(f"{field}: {exc}", code="invalid_filter") from None
    return value


def count_leaves(node: Node) -> int:
    if isinstance(node, Condition):
        return 1
    return sum(count_leaves(child) for child in node.children)


def escape_like(text: str) -> str:
    """Make % and _ (and the escape character itself) match literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern as a GLOB pattern (SQLite's case-sensitive match)."""
    out = []
    for char in pattern:
        if char in "*?[":
            out.append(f"[{char}]")
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(char)
    return "".join(out)


def compile_node(node: Node, organization: str, like_ci: str) -> tuple[str, list]:
    """(SQL boolean expression over `r`, params)."""
    if isinstance(node, Branch):
        if not node.children:
            return ("1=1" if node.operator == "and" else "1=0"), []
        parts, params = [], []
        for child in node.children:
            sql, child_params = compile_node(child, organization, like_ci)
            parts.append(sql)
            params += child_params
        return "(" + f" {node.operator.upper()} ".join(parts) + ")", params
    if node.field.startswith(PROPERTY_PREFIX):
        return _property(node, organization, like_ci)
    if FIELDS[node.field][1] == BODY:
        return _body(node, organization, like_ci)
    column = "r." + FIELDS[node.field][0]
    if node.field == "status" and node.op in _COMPARE:
        return status_condition(_COMPARE[node.op], node.value, like_ci), []
    return _compare(column, node.op, node.value, like_ci)


def status_condition(operator: str, value: int | float, like_ci: str) -> str:
    """`r.status <operator> <value>` with the value written in the SQL, not bound: the
    status index holds no 200s (store/_schema_v18.py, _schema_v19.py), and PostgreSQL's
    planner uses it only where it proves the filter excludes them, which a plan made for
    any parameter value (a prepared statement's generic plan) cannot. SQLite's proves
    nothing of the kind: it uses a partial index only where the query holds the index's
    WHERE term as written, so on SQLite a comparison that 200 fails carries that term too
    (not on PostgreSQL, whose row estimate would count the redundant term again). The
    value is a checked number (int() of the Requests page's, _checked_value's), never text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"a status compares with a finite number, got {value!r}")
    sql = f"r.status {operator} {int(value) if value == int(value) else value!r}"
    if _NAMES_INDEX_TERM[like_ci] and not _HOLDS[operator](COMMON_STATUS, value):
        return f"({sql} AND r.status <> {COMMON_STATUS})"
    return sql


# By dialect (keyed by its like_ci, as _CASE_SENSITIVE_LIKE): whether a query must write
# the status index's own WHERE term to be read through it (SQLite).
_NAMES_INDEX_TERM = {"LIKE": True, "ILIKE": False}
_HOLDS = {"=": eq, ">": gt, ">=": ge, "<": lt, "<=": le}


def _compare(column: str, op: str, value: Any, like_ci: str) -> tuple[str, list]:
    if op in _COMPARE:
        return f"{column} {_COMPARE[op]} ?", [value]
    if op == "ne":  # a missing value is not the one excluded
        return f"({column} <> ? OR {column} IS NULL)", [value]
    if op == "like":
        case_sensitive = _CASE_SENSITIVE_LIKE.get(like_ci, "LIKE")
        pattern = _like_to_glob(value) if case_sensitive == "GLOB" else value
        return f"{column} {case_sensitive} ?", [pattern]
    if op == "ilike":
        return f"{column} {like_ci} ?", [value]
    pattern = f"%{escape_like(value)}%"
    if op == "contains":
        return f"{column} {like_ci} ? ESCAPE '\\'", [pattern]
    # not_contains
    return f"({column} IS NULL OR NOT ({column} {like_ci} ? ESCAPE '\\'))", [pattern]


def _body(node: Condition, organization: str, like_ci: str) -> tuple[str, list]:
    # Bodies live in their own table (store/_schema.py, version 5); a record without
    # one does not contain the value.
    test, params = _compare("b." + FIELDS[node.field][0], "contains", node.value, like_ci)
    sql = ("r.id {} (SELECT b.request_id FROM request_bodies b"
           " WHERE b.organization = ? AND " + test + ")")
    return (sql.format("NOT IN" if node.op == "not_contains" else "IN"),
            [organization, *params])


def _property(node: Condition, organization: str, like_ci: str) -> tuple[str, list]:
    name = node.field[len(PROPERTY_PREFIX):]
    # A record without the property does not equal (or contain) the value: the negative
    # operators keep it, as "ne" does for a column.
    negative = {"ne": "eq", "not_contains": "contains"}
    op = negative.get(node.op, node.op)
    test, params = _compare("p.value", op, node.value, like_ci)
    sql = ("r.id {} (SELECT p.request_id FROM request_properties p"
           " WHERE p.organization = ? AND p.name = ? AND " + test + ")")
    return sql.format("NOT IN" if node.op in negative else "IN"), [organization, name, *params]
