"""Helicone's filter trees (POST /v1/request/query and friends) → conditions.

A tree is "all", a leaf `{table: {column: {operator: value}}}` (several tables, columns or
operators in one leaf all apply), or a branch `{"left", "operator": "and"|"or", "right"}`.
Leaves on the request tables become analytics Conditions (SQL on the raw rows); leaves on
`users_view` describe a whole user (total requests, cost…), so they become a test on each
user's summary instead (`UserTest`), applied after aggregation. A tree may join the two
kinds only with "and" at its top.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from heliograph.analytics.conditions import Branch, Condition, Node, condition, count_leaves
from heliograph.errors import BadRequest

MAX_DEPTH = 32
MAX_LEAVES = 100
OPERATORS = {"equals": "eq", "not-equals": "ne", "like": "like", "ilike": "ilike",
             "contains": "contains", "not-contains": "not_contains",
             "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
# Helicone table → its column → our field (analytics/conditions.py FIELDS).
REQUEST_TABLES: dict[str, dict[str, str]] = {
    "request_response_rmt": {
        "request_id": "id", "model": "model", "provider": "provider", "user_id": "user_id",
        "status": "status", "latency": "latency", "time_to_first_token": "ttft",
        "cost": "cost", "prompt_tokens": "prompt_tokens",
        "completion_tokens": "completion_tokens", "total_tokens": "tokens",
        "prompt_cache_read_tokens": "cached_tokens",
        "prompt_cache_write_tokens": "cache_write_tokens",
        "request_created_at": "created_at", "response_created_at": "created_at",
        "request_body": "request_body", "response_body": "response_body",
        "helicone-score-feedback": "feedback",
    },
    "request": {"id": "id", "model": "model", "user_id": "user_id", "path": "path",
                "created_at": "created_at", "prompt": "request_body"},
    "response": {"status": "status", "model": "model_used", "body_model": "model_used",
                 "body_tokens": "tokens", "body_completion": "response_body"},
    "feedback": {"rating": "feedback"},
    "sessions_request_response_rmt": {"session_session_id": "session_id",
                                      "session_session_name": "session_name"},
}
# users_view column → the key of a user summary (analytics/helicone_reads.py).
USER_COLUMNS = {
    "user_user_id": "user_id", "user_active_for": "active_for",
    "user_first_active": "first_active", "user_last_active": "last_active",
    "user_total_requests": "total_requests",
    "user_average_requests_per_day_active": "average_requests_per_day_active",
    "user_average_tokens_per_request": "average_tokens_per_request",
    "user_total_completion_tokens": "total_completion_tokens",
    "user_total_prompt_tokens": "total_prompt_tokens", "user_cost": "cost",
}

UserTest = Callable[[dict], bool]


@dataclass
class Translated:
    conditions: list[Node] = field(default_factory=list)   # on the rows, ANDed
    user_tests: list[UserTest] = field(default_factory=list)  # on user summaries, ANDed


def translate(tree: Any, allow_users: bool = False) -> Translated:
    """A 400 naming what is not understood: a filter silently ignored would answer with
    rows the caller excluded."""
    out = Translated()
    for part in _and_parts(tree, 0):
        if allow_users and _is_user_leaf(part):
            out.user_tests.append(_user_test(part))
            continue
        node = _node(part, 0)
        if node is not None:
            out.conditions.append(node)
    if sum(count_leaves(node) for node in out.conditions) + len(out.user_tests) > MAX_LEAVES:
        raise BadRequest(f"the filter has more than {MAX_LEAVES} conditions",
                         code="too_many_filters")
    return out


def _and_parts(tree: Any, depth: int) -> list[Any]:
    """The top-level "and" chain, flattened."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"the filter is nested deeper than {MAX_DEPTH} levels",
                         code="invalid_filter")
    if isinstance(tree, dict) and tree.get("operator") == "and" and "left" in tree:
        return _and_parts(tree["left"], depth + 1) + _and_parts(tree.get("right"), depth + 1)
    return [tree]


def _node(tree: Any, depth: int) -> Node | None:
    """None: matches everything ("all", an empty leaf)."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"the filter is nested deeper than {MAX_DEPTH} levels",
                         code="invalid_filter")
    if tree is None or tree == "all":
        return None
    if not isinstance(tree, dict):
        raise BadRequest(f"a filter node is \"all\", a leaf or a branch, got {tree!r}"[:300],
                         code="invalid_filter")
    if "operator" in tree or "left" in tree or "right" in tree:
        operator = tree.get("operator")
        if operator not in ("and", "or"):
            raise BadRequest(f"a filter branch's operator is \"and\" or \"or\", got "
                             f"{operator!r}"[:200], code="invalid_filter")
        children = [_node(tree.get(side), depth + 1) for side in ("left", "right")]
        if operator == "or" and None in children:
            return None  # anything or everything
        kept = tuple(child for child in children if child is not None)
        return Branch(operator, kept) if kept else None
    return _leaf(tree)


def _leaf(leaf: dict) -> Node | None:
    found: list[Node] = []
    for table, columns in leaf.items():
        if table == "properties":
            found += _properties(columns)
            continue
        known = REQUEST_TABLES.get(table)
        if known is None:
            raise BadRequest(f"unknown filter table {table!r}; tables: "
                             f"{', '.join(sorted(REQUEST_TABLES))}, properties",
                             code="invalid_filter")
        if not isinstance(columns, dict):
            raise BadRequest(f"filter {table} must map columns to operators",
                             code="invalid_filter")
        for column, operators in columns.items():
            if column in ("properties", "search_properties") and table == "request_response_rmt":
                found += _properties(operators)
            elif column == "cached":
                found += [_cached(value) for value in _operators(column, operators).values()]
            elif column in known:
                found += [condition(known[column], op, value)
                          for op, value in _operators(column, operators).items()]
            else:
                raise BadRequest(f"unsupported filter column {table}.{column}; supported: "
                                 f"{', '.join(sorted(known))}", code="invalid_filter")
    if not found:
        return None
    return found[0] if len(found) == 1 else Branch("and", tuple(found))


def _operators(column: str, operators: Any) -> dict[str, Any]:
    if not isinstance(operators, dict) or not operators:
        raise BadRequest(f"filter {column} must be {{operator: value}}", code="invalid_filter")
    out = {}
    for name, value in operators.items():
        if name not in OPERATORS:
            raise BadRequest(f"unknown filter operator {name!r} on {column}; operators: "
                             f"{', '.join(OPERATORS)}", code="invalid_filter")
        out[OPERATORS[name]] = value
    return out


def _properties(columns: Any) -> list[Node]:
    if not isinstance(columns, dict):
        raise BadRequest("properties filters map names to operators", code="invalid_filter")
    return [condition(f"property.{name}", op, value) for name, operators in columns.items()
            for op, value in _operators(f"properties.{name}", operators).items()]


def _cached(value: Any) -> Condition:
    if not isinstance(value, bool):
        raise BadRequest("cached compares with true or false", code="invalid_filter")
    return condition("cache", "eq" if value else "ne", "hit")


def _is_user_leaf(tree: Any) -> bool:
    return isinstance(tree, dict) and set(tree) == {"users_view"}


def _user_test(leaf: dict) -> UserTest:
    columns = leaf["users_view"]
    if not isinstance(columns, dict):
        raise BadRequest("users_view filters map columns to operators", code="invalid_filter")
    tests = []
    for column, operators in columns.items():
        key = USER_COLUMNS.get(column)
        if key is None:
            raise BadRequest(f"unsupported filter column users_view.{column}; supported: "
                             f"{', '.join(USER_COLUMNS)}", code="invalid_filter")
        for op, value in _operators(column, operators).items():
            tests.append(_compare_test(key, op, value))
    return lambda user: all(test(user) for test in tests)


def _compare_test(key: str, op: str, value: Any) -> UserTest:
    numeric = key not in ("user_id", "first_active", "last_active")
    if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
        raise BadRequest(f"users_view {key} compares with a number, got {value!r}"[:300],
                         code="invalid_filter")
    if not numeric and not isinstance(value, str):
        raise BadRequest(f"users_view {key} compares with a string", code="invalid_filter")
    if not numeric and key != "user_id":
        from heliograph.analytics.filters import normalize_timestamp
        try:
            value = normalize_timestamp(value)
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_filter") from None
    tests: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: v == value, "ne": lambda v: v != value,
        "gt": lambda v: v > value, "gte": lambda v: v >= value,
        "lt": lambda v: v < value, "lte": lambda v: v <= value,
        "contains": lambda v: str(value).lower() in str(v).lower(),
        "not_contains": lambda v: str(value).lower() not in str(v).lower(),
    }
    if op not in tests or (numeric and op in ("contains", "not_contains")):
        raise BadRequest(f"users_view {key} does not take {op!r}", code="invalid_filter")
    test = tests[op]
    return lambda user: user.get(key) is not None and test(user[key])
