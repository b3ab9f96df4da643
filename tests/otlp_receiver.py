"""A real OTLP/HTTP trace receiver for the tests: accepts POST /v1/traces (protobuf, as
opentelemetry-exporter-otlp-proto-http sends it), decodes each ExportTraceServiceRequest
and keeps its spans."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def attributes(pb_attributes) -> dict:
    """OTLP KeyValues as a plain dict (string, int, double, bool, string arrays)."""
    out = {}
    for kv in pb_attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            out[kv.key] = getattr(value, kind) if kind else None
    return out


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list = []      # opentelemetry.proto.trace.v1.Span
        self.resources: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    for resource_spans in request.resource_spans:
                        receiver.resources.append(attributes(resource_spans.resource.attributes))
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans.extend(scope_spans.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def span_for(self, helicone_id: str, timeout: float = 15.0):
        """The span whose helicone.id is `helicone_id`, waiting for the batch export."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for span in self.spans:
                    if attributes(span.attributes).get("helicone.id") == helicone_id:
                        return span
            time.sleep(0.1)
        raise AssertionError(f"no span for {helicone_id} after {timeout}s "
                             f"({len(self.spans)} spans received)")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
