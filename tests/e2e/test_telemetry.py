"""OpenTelemetry traces from a real gateway (`heliograph serve`) to a real OTLP/HTTP
receiver: GenAI attributes, the caller's traceparent as the parent, our span named
upstream in the traceparent the provider receives, and content only when asked."""

from __future__ import annotations

import json
import uuid

import openai
import pytest
from otlp_receiver import OtlpReceiver, attributes
from servers import ADMIN_KEY, Gateway

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver():
    server = OtlpReceiver()
    yield server
    server.stop()


def traced_gateway(tmp_path, upstream, receiver, capture: bool) -> Gateway:
    return Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}", extra_config=f"""
[telemetry]
otlp_endpoint = "{receiver.url}"
service_name = "heliograph-test"
capture_content = {'true' if capture else 'false'}
""")


@pytest.fixture(scope="module")
def gateway_traced(upstream, receiver, tmp_path_factory):
    gw = traced_gateway(tmp_path_factory.mktemp("traced"), upstream, receiver, False)
    yield gw
    gw.stop()


def client(gw: Gateway, **headers) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0,
                         default_headers=headers)


def upstream_request(upstream, marker: str) -> dict:
    found = [r for r in upstream.received() if marker in json.dumps(r.get("body"))]
    assert found, f"the fake upstream never saw {marker}"
    return found[-1]


def test_span_has_genai_attributes_and_callers_parent(gateway_traced, receiver, upstream):
    marker = uuid.uuid4().hex
    raw = client(gateway_traced, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01") \
        .chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": marker}])
    answer = raw.parse()
    helicone_id = raw.headers["helicone-id"]

    span = receiver.span_for(helicone_id)
    attrs = attributes(span.attributes)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == 3  # SPAN_KIND_CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == answer.model
    assert attrs["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attrs["gen_ai.response.finish_reasons"] == [answer.choices[0].finish_reason]
    assert attrs["gen_ai.response.id"] == answer.id
    assert attrs["http.response.status_code"] == 200
    assert "error.type" not in attrs
    assert span.end_time_unix_nano > span.start_time_unix_nano
    # Content is off by default.
    assert not span.events
    assert marker not in str(span)
    # The caller's traceparent is our parent ...
    assert span.trace_id.hex() == CALLER_TRACE
    assert span.parent_span_id.hex() == CALLER_SPAN
    # ... and the provider was told our span is its parent.
    sent = upstream_request(upstream, marker)["headers"]
    assert sent["traceparent"] == f"00-{CALLER_TRACE}-{span.span_id.hex()}-01"
    assert {"service.name": "heliograph-test"}.items() <= receiver.resources[-1].items()
    # The ids are in the logged record too (its extra data), to go from log to trace.
    record = gateway_traced.record(helicone_id)
    assert record["trace"] == {"trace_id": CALLER_TRACE, "span_id": span.span_id.hex(),
                               "parent_span_id": CALLER_SPAN}


def test_without_traceparent_a_new_trace_reaches_the_provider(gateway_traced, receiver,
                                                              upstream):
    marker = uuid.uuid4().hex
    raw = client(gateway_traced).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": marker}], stream=True)
    for _ in raw.parse():
        pass
    span = receiver.span_for(raw.headers["helicone-id"])
    assert span.parent_span_id == b""
    assert span.trace_id.hex() != CALLER_TRACE
    attrs = attributes(span.attributes)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    sent = upstream_request(upstream, marker)["headers"]
    assert sent["traceparent"] == f"00-{span.trace_id.hex()}-{span.span_id.hex()}-01"


def test_failed_request_has_error_type(gateway_traced, receiver):
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway_traced).chat.completions.create(
            model="gpt-4o-mini-fake-status-503", messages=[{"role": "user", "content": "x"}])
    span = receiver.span_for(caught.value.response.headers["helicone-id"])
    attrs = attributes(span.attributes)
    assert attrs["error.type"] == str(caught.value.status_code)
    assert attrs["http.response.status_code"] == caught.value.status_code
    assert span.status.code == 2  # STATUS_CODE_ERROR


def test_capture_content_adds_prompt_and_answer_event(upstream, receiver, tmp_path):
    gw = traced_gateway(tmp_path, upstream, receiver, True)
    try:
        marker = uuid.uuid4().hex
        raw = client(gw).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": marker}])
        answer = raw.parse()
        span = receiver.span_for(raw.headers["helicone-id"])
    finally:
        gw.stop()
    [event] = span.events
    assert event.name == "gen_ai.client.inference.operation.details"
    details = attributes(event.attributes)
    assert json.loads(details["gen_ai.input.messages"]) == [{"role": "user",
                                                             "content": marker}]
    assert answer.choices[0].message.content in details["gen_ai.output.messages"]
