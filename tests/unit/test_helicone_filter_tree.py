"""Helicone's filter trees translated to analytics conditions: the tree's logic kept,
"all" and empty leaves matching everything, and limits on size and depth."""

from __future__ import annotations

import pytest

from heliograph.analytics.conditions import Branch, Condition
from heliograph.analytics.helicone_tree import translate
from heliograph.errors import BadRequest

MODEL = {"request_response_rmt": {"model": {"equals": "gpt-4o"}}}
SLOW = {"request_response_rmt": {"latency": {"gt": 100}}}


def test_top_level_and_chains_are_flattened_and_or_is_kept():
    tree = {"left": MODEL, "operator": "and",
            "right": {"left": SLOW, "operator": "or", "right": {"properties": {
                "Team": {"not-equals": "ops"}}}}}
    conditions = translate(tree).conditions
    assert conditions == [
        Condition("model", "eq", "gpt-4o"),
        Branch("or", (Condition("latency", "gt", 100),
                      Condition("property.team", "ne", "ops")))]


@pytest.mark.parametrize("tree", ["all", {}, {"request_response_rmt": {}},
                                  {"left": MODEL, "operator": "or", "right": "all"}])
def test_what_matches_everything_adds_no_condition(tree):
    assert translate(tree).conditions == []


def test_several_operators_in_one_leaf_all_apply():
    leaf = {"request_response_rmt": {"latency": {"gte": 10, "lt": 20}}}
    assert translate(leaf).conditions == [Branch("and", (
        Condition("latency", "gte", 10), Condition("latency", "lt", 20)))]


def test_users_view_only_where_user_metrics_take_it():
    tree = {"left": {"users_view": {"user_total_requests": {"gte": 2}}}, "operator": "and",
            "right": MODEL}
    translated = translate(tree, allow_users=True)
    assert translated.conditions == [Condition("model", "eq", "gpt-4o")]
    [test] = translated.user_tests
    assert test({"total_requests": 2}) and not test({"total_requests": 1})
    with pytest.raises(BadRequest):
        translate(tree)


def test_size_and_depth_are_bounded():
    tree: object = MODEL
    for _ in range(40):
        tree = {"left": tree, "operator": "or", "right": SLOW}
    with pytest.raises(BadRequest) as refused:
        translate(tree)
    assert "deeper" in refused.value.message
    wide = {"request_response_rmt": {"properties": {f"p{i}": {"equals": "x"}
                                                    for i in range(101)}}}
    with pytest.raises(BadRequest) as refused:
        translate(wide)
    assert "more than 100" in refused.value.message
