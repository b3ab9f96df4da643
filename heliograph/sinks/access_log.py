"""The access log: one line per proxied request, from its finished record — method, path,
status, model, provider, latency and record id, which uvicorn's own access log (off) does
not know. Failed upstream attempts (5xx, connection errors, timeouts) are warnings of
their own, so a flaky provider shows even when a fallback saved the request.

Nothing here reads headers or bodies: a caller's key cannot reach the log through it (and
logs.redact masks anything key-shaped in error texts the provider wrote).
"""

from __future__ import annotations

import logging

from heliograph.records import Record

access = logging.getLogger("heliograph.access")
upstream = logging.getLogger("heliograph.upstream")

# Every path that produces a record is a POST (the proxy's routes, app.PROXY_ROUTES).
METHOD = "POST"


class AccessLogSink:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def accept(self, record: Record) -> None:
        for attempt in record["attempts"]:
            status = attempt.get("status") or 0
            # 5xx from the provider, or ours for an unreachable one (502/504).
            if status >= 500 and upstream.isEnabledFor(logging.WARNING):
                upstream.warning(
                    "upstream %s failed for %s: %s %s (record %s)", attempt.get("provider"),
                    attempt.get("model"), status, attempt.get("error") or "", record["id"],
                    extra={"fields": {"record_id": record["id"], "status": status,
                                      "provider": attempt.get("provider"),
                                      "model": attempt.get("model")}})
        if self.enabled and access.isEnabledFor(logging.INFO):
            latency = record["latency_ms"]
            # makeRecord + handle: the same as access.info(), minus the caller lookup
            # (a stack walk on every request that no format shows).
            access.handle(access.makeRecord(
                access.name, logging.INFO, __file__, 0,
                "%s %s %s model=%s provider=%s %.1fms id=%s",
                (METHOD, record["path"], record["status"], record["model"] or "-",
                 record["provider"] or "-", latency or 0.0, record["id"]), None,
                extra={"fields": {"method": METHOD, "path": record["path"],
                                  "status": record["status"], "model": record["model"],
                                  "provider": record["provider"], "latency_ms": latency,
                                  "record_id": record["id"]}}))

    def close(self) -> None:
        pass
