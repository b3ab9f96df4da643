"""OpenTelemetry traces: one span per proxied request, following the GenAI semantic
conventions, built from the finished record and exported over OTLP/HTTP.

The span is built after the fact, with explicit start and end times, from the record
alone — nothing is timed or awaited on the request path. Its ids are chosen when the
request arrives (`open_trace`, stored in the record's `trace`), so the same span can be
named upstream in a `traceparent` header before it exists, and a caller's `traceparent`
becomes its parent.

The OpenTelemetry SDK is imported only when `TelemetrySink` is built ([telemetry]
otlp_endpoint set): a gateway without telemetry never loads it. Export runs in the SDK's
BatchSpanProcessor thread, never on the event loop.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from heliograph import __version__, deep_json
from heliograph.records import Record

log = logging.getLogger("heliograph.telemetry")

# W3C Trace Context: version-traceid-parentid-flags (version ff is invalid).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
# Spans wait at most this long in the batch before export (the SDK's default is 5 s).
EXPORT_DELAY_MS = 1000
# One export's deadline: also bounds how long shutdown waits on an unreachable collector.
EXPORT_TIMEOUT_S = 5

# The gateway's path → gen_ai.operation.name.
OPERATIONS = {
    "/v1/chat/completions": "chat", "/chat/completions": "chat",
    "/v1/messages": "chat", "/v1/responses": "chat", "/responses": "chat",
    "/v1/responses/compact": "chat", "/responses/compact": "chat",
    "/v1/embeddings": "embeddings", "/embeddings": "embeddings",
    "/v1/messages/count_tokens": "count_tokens",
    "/v1/completions": "text_completion",
    "/v1/images/generations": "generate_content", "/v1/images/edits": "generate_content",
    "/v1/images/variations": "generate_content", "/v1/audio/speech": "generate_content",
    "/v1/audio/transcriptions": "generate_content",
    "/v1/audio/translations": "generate_content",
}
# Our provider names where the conventions spell them differently (gen_ai.provider.name).
PROVIDER_NAMES = {"gemini": "gcp.gemini", "azure": "azure.ai.openai", "mistral": "mistral_ai",
                  "bedrock": "aws.bedrock", "xai": "x_ai"}


def open_trace(headers: Mapping[str, str]) -> dict[str, str]:
    """Ids for the request's span: the caller's trace continued when it sent a valid
    `traceparent`, else a new trace."""
    ids = os.urandom(24).hex()
    trace_id, parent = ids[:32], ""
    match = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip().lower())
    if match and match[1] != "ff" and match[2] != _ZERO_TRACE and match[3] != _ZERO_SPAN:
        trace_id, parent = match[2], match[3]
    return {"trace_id": trace_id, "span_id": ids[32:], "parent_span_id": parent}


def traceparent(trace: Mapping[str, str]) -> str:
    """The header naming our span as the parent of the provider's work (sampled)."""
    return f"00-{trace['trace_id']}-{trace['span_id']}-01"


def traces_url(endpoint: str) -> str:
    """[telemetry] otlp_endpoint is the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
    is; the full traces URL is taken as given."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def _ns(created_at: str) -> int:
    when = _dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return int(when.timestamp() * 1_000_000) * 1000


def finish_reasons(response: Any) -> list[str]:
    """Why the answer ended, in each wire format the gateway logs."""
    if not isinstance(response, dict):
        return []
    choices = response.get("choices")
    if isinstance(choices, list):
        return [c["finish_reason"] for c in choices
                if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)]
    for key in ("stop_reason", "status"):  # Anthropic Messages, OpenAI Responses
        if isinstance(response.get(key), str):
            return [response[key]]
    return []


def span_attributes(record: Record) -> dict[str, Any]:
    """The GenAI semantic-convention attributes of a finished record."""
    provider = record["provider"]
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATIONS.get(record["path"], "chat"),
        "http.response.status_code": record["status"] or 0,
        "url.path": record["path"],
        "helicone.id": record["id"],
    }
    if provider:
        attrs["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider, provider)
        attrs["gen_ai.system"] = attrs["gen_ai.provider.name"]  # the older name
    optional = {
        "gen_ai.request.model": record["model"],
        "gen_ai.response.model": record["model_used"],
        "gen_ai.usage.input_tokens": record["prompt_tokens"],
        "gen_ai.usage.output_tokens": record["completion_tokens"],
        "heliograph.cost_usd": record["cost_usd"],
        "heliograph.cache": record["cache"],
        "heliograph.fallback_index": record["fallback_index"],
    }
    attrs.update((k, v) for k, v in optional.items() if v is not None)
    response = record["response"]
    reasons = finish_reasons(response)
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    if isinstance(response, dict) and isinstance(response.get("id"), str):
        attrs["gen_ai.response.id"] = response["id"]
    if (record["status"] or 0) >= 400:
        attrs["error.type"] = str(record["status"])
    return attrs


class TelemetrySink:
    """Turns each finished record into a span handed to a BatchSpanProcessor."""

    def __init__(self, endpoint: str, service_name: str = "heliograph",
                 capture_content: bool = False) -> None:
        # Imported here: only a gateway exporting traces pays for the SDK.
        try:
            from opentelemetry import trace as otel
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import Event, ReadableSpan
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError as exc:
            raise RuntimeError(f"[telemetry] otlp_endpoint is set but {exc.name} is not "
                               "installed: pip install 'heliograph[telemetry]'") from None

        self._otel, self._event, self._span = otel, Event, ReadableSpan
        self.capture_content = capture_content
        self.resource = Resource.create({"service.name": service_name,
                                         "service.version": __version__})
        self.scope = InstrumentationScope("heliograph", __version__)
        self.processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint),
                                                             timeout=EXPORT_TIMEOUT_S),
                                            schedule_delay_millis=EXPORT_DELAY_MS)
        self._sampled = otel.TraceFlags(otel.TraceFlags.SAMPLED)

    @classmethod
    def from_settings(cls, settings: Any) -> TelemetrySink:
        return cls(settings.otlp_endpoint, settings.telemetry_service_name,
                   settings.telemetry_capture_content)

    def accept(self, record: Record) -> None:
        # Returns at once: the processor queues the span for its export thread.
        self.processor.on_end(self.build_span(record))

    def build_span(self, record: Record) -> Any:
        otel = self._otel
        # A record refused before its ids were chosen (a bad Helicone header) still
        # gets a span, in a trace of its own.
        trace = record["trace"] or open_trace({})
        trace_id = int(trace["trace_id"], 16)
        context = otel.SpanContext(trace_id, int(trace["span_id"], 16), is_remote=False,
                                   trace_flags=self._sampled)
        parent = None
        if trace["parent_span_id"]:
            parent = otel.SpanContext(trace_id, int(trace["parent_span_id"], 16),
                                      is_remote=True, trace_flags=self._sampled)
        start = _ns(record["created_at"])
        end = start + int((record["latency_ms"] or 0) * 1_000_000)
        attrs = span_attributes(record)
        model = record["model"]
        name = f"{attrs['gen_ai.operation.name']} {model}" if model else \
            attrs["gen_ai.operation.name"]
        status = otel.Status(otel.StatusCode.UNSET)
        if "error.type" in attrs:
            status = otel.Status(otel.StatusCode.ERROR, record["error"] or None)
        return self._span(name, context=context, parent=parent, resource=self.resource,
                          attributes=attrs, events=self._content_events(record, end),
                          kind=otel.SpanKind.CLIENT, status=status, start_time=start,
                          end_time=end, instrumentation_scope=self.scope)

    def _content_events(self, record: Record, at_ns: int) -> list[Any]:
        """Prompt and answer, only when [telemetry] capture_content = true: they may hold
        personal data and secrets, so traces carry none by default."""
        if not self.capture_content:
            return []
        request, response = record["request"], record["response"]
        attrs: dict[str, str] = {}
        if request is not None:
            messages = request.get("messages", request) if isinstance(request, dict) \
                else request
            attrs["gen_ai.input.messages"] = deep_json.dumps(messages).decode()
        if response is not None:
            attrs["gen_ai.output.messages"] = deep_json.dumps(response).decode()
        if not attrs:
            return []
        return [self._event("gen_ai.client.inference.operation.details", attrs, at_ns)]

    def close(self) -> None:
        """Export what is still queued (bounded by the exporter's timeout)."""
        self.processor.shutdown()
