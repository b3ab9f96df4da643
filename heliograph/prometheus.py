"""GET /metrics: the Prometheus text format, summed across uvicorn workers.

Workers are separate processes, each with its own counters. prometheus-client's
multiprocess mode keeps them in per-process files under PROMETHEUS_MULTIPROC_DIR, which
must be set before any worker imports prometheus_client: `serve` calls
prepare_multiprocess_dir() (heliograph/metrics_dir.py, which the master imports instead of
this module) right after handing the settings to the workers. The folder is
per gateway (named after the serving process, inside the journal folder), emptied at
startup (a stale one from a killed gateway would add its old counts) and removed at exit.
A scrape, answered by whichever worker gets it, reads every worker's files.

The journal gauges (backlog, writer lag) are computed at scrape time from the journal
folder, so they are right whichever worker answers and need no bookkeeping per request.

Access: with [metrics] token set, a request must carry `Authorization: Bearer <token>`
(else 401); without one, only loopback callers are answered (else 403).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from heliograph.asgi import Request, send_bytes, send_error
from heliograph.config import Settings
from heliograph.errors import Forbidden, GatewayError, NotFound, Unauthorized
from heliograph.metrics_dir import DIR_PREFIX, MULTIPROC_ENV, prepare_multiprocess_dir
from heliograph.routes import Route
from heliograph.sinks.metrics import MetricsSink
from heliograph.store.journal import closed_segments, waiting
from heliograph.types import Send

if TYPE_CHECKING:
    from heliograph.app import Gateway

__all__ = ("DIR_PREFIX", "MULTIPROC_ENV", "ROUTES", "prepare_multiprocess_dir", "render")
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def is_loopback(host: str | None) -> bool:
    """Whether a caller's address is this machine. None is a Unix socket: local too."""
    if host is None:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_access(settings: Settings, request: Request) -> GatewayError | None:
    """None when the caller may scrape; else the error to answer."""
    token = settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode()):
            return None
        return Unauthorized("GET /metrics needs 'Authorization: Bearer <metrics token>' "
                            "([metrics] token)", code="invalid_metrics_token",
                            headers={"www-authenticate": "Bearer"})
    client = request.scope.get("client")
    if is_loopback(client[0] if client else None):
        return None
    return Forbidden("GET /metrics is open only to loopback callers; set [metrics] token "
                     "to scrape it from elsewhere")


class JournalCollector:
    """Records waiting in the journal folder, read at scrape time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        segments, size, oldest = waiting(closed_segments(self.directory))
        lag = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        yield GaugeMetricFamily("heliograph_journal_segments",
                                "Journal segments holding records not yet in the database",
                                value=segments)
        yield GaugeMetricFamily("heliograph_journal_bytes",
                                "Bytes of records waiting in the journal", value=size)
        yield GaugeMetricFamily("heliograph_journal_writer_lag_seconds",
                                "Age of the oldest record batch not yet written to the "
                                "database (0 when none waits)", value=lag)


def metrics_sink(gw: Gateway) -> MetricsSink | None:
    return next((s for s in gw.sinks.others if isinstance(s, MetricsSink)), None)


def render(gw: Gateway) -> bytes:
    """One scrape, on a registry of its own (dropped after the call)."""
    registry = CollectorRegistry(auto_describe=False)
    sink = metrics_sink(gw)
    if os.environ.get(MULTIPROC_ENV) and values.ValueClass is not values.MutexValue:
        # Every worker's files, dead workers' counts included (counters never go back).
        MultiProcessCollector(registry, os.environ[MULTIPROC_ENV])
    elif sink is not None:
        registry.register(sink.registry)  # one process: this sink's own counters
    registry.register(JournalCollector(gw.journal.directory))
    return generate_latest(registry)


async def scrape(gw: Gateway, request: Request, send: Send) -> None:
    if not gw.settings.metrics_enabled:
        await send_error(send, NotFound("metrics are disabled ([metrics] enabled = false)"))
        return
    refusal = check_access(gw.settings, request)
    if refusal is not None:
        await send_error(send, refusal)
        return
    await send_bytes(send, 200, render(gw), content_type=CONTENT_TYPE)


ROUTES = [Route("GET", "/metrics", scrape)]
