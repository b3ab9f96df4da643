"""The span ids chosen on arrival (sinks/telemetry.open_trace): a valid W3C traceparent is
continued, anything else starts a new trace; and the collector URL."""

from __future__ import annotations

import pytest

from heliograph.sinks.telemetry import open_trace, traceparent, traces_url

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_valid_traceparent_is_continued():
    trace = open_trace({"traceparent": f" 00-{TRACE.upper()}-{SPAN}-01 "})
    assert trace["trace_id"] == TRACE and trace["parent_span_id"] == SPAN
    assert len(trace["span_id"]) == 16 and trace["span_id"] != SPAN
    assert traceparent(trace) == f"00-{TRACE}-{trace['span_id']}-01"


@pytest.mark.parametrize("header", [
    "", "garbage", f"ff-{TRACE}-{SPAN}-01", f"00-{'0' * 32}-{SPAN}-01",
    f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE[:-1]}-{SPAN}-01", f"00-{TRACE}-{SPAN}-zz",
    f"00-{TRACE}-{SPAN}-01-extra"])
def test_invalid_traceparent_starts_a_new_trace(header):
    trace = open_trace({"traceparent": header})
    assert trace["parent_span_id"] == "" and trace["trace_id"] != TRACE
    assert len(trace["trace_id"]) == 32 and int(trace["trace_id"], 16) != 0


def test_each_request_gets_its_own_span():
    assert open_trace({})["span_id"] != open_trace({})["span_id"]


def test_traces_url():
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
