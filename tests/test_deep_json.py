"""deep_json: values nested deeper than orjson writes are encoded with a note, not lost."""

import orjson

from heliograph import deep_json


def nested(depth):
    value = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_values_within_the_limit_are_encoded_exactly_as_orjson_does():
    record = {"id": "r1", "response": nested(deep_json.MAX_DEPTH - 1)}
    assert deep_json.dumps(record) == orjson.dumps(record)


def test_a_too_deep_value_keeps_its_outer_levels_and_a_note():
    record = {"id": "r1", "response": {"choices": nested(600)}}  # orjson reads 1024 deep
    encoded = orjson.loads(deep_json.dumps(record, orjson.OPT_APPEND_NEWLINE))
    assert encoded["id"] == "r1"
    inner, enclosing = encoded["response"]["choices"], 2  # the record and "response"
    while isinstance(inner, list):
        inner, enclosing = inner[0], enclosing + 1
    assert inner == deep_json.TOO_DEEP and enclosing == deep_json.MAX_DEPTH


def test_deeper_than_counts_containers_and_handles_any_depth():
    assert not deep_json.deeper_than({"a": nested(127)}, 128)
    assert deep_json.deeper_than({"a": nested(128)}, 128)
    assert not deep_json.deeper_than("text", 0)
    assert deep_json.deeper_than(nested(5000), 10)  # beyond Python's recursion limit
