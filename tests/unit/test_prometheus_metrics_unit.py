"""The /metrics access rules, the sink's classification of records, and the per-gateway
multiprocess folder: the pieces the end-to-end test cannot steer (remote callers, budget
refusals, timeouts, a flood of model names)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from heliograph.asgi import Request
from heliograph.config import load_settings
from heliograph.prometheus import (
    MULTIPROC_ENV,
    JournalCollector,
    check_access,
    is_loopback,
    prepare_multiprocess_dir,
)
from heliograph.records import new_record
from heliograph.sinks.metrics import MAX_SERIES, MetricsSink, upstream_error_kind


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    (None, True),  # a Unix socket
    ("10.0.0.5", False), ("192.168.1.20", False), ("::ffff:10.0.0.5", False),
    ("2001:db8::1", False), ("0.0.0.0", False), ("localhost.evil.com", False), ("", False),
])
def test_only_loopback_addresses_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def request_from(client, authorization=None):
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers,
                    "client": client}, None)


def settings_with(tmp_path, text=""):
    config = tmp_path / "heliograph.toml"
    config.write_text(text)
    return load_settings(str(config), environ={})


def test_without_a_token_remote_callers_get_403(tmp_path):
    settings = settings_with(tmp_path)
    assert check_access(settings, request_from(("127.0.0.1", 5000))) is None
    refused = check_access(settings, request_from(("10.1.2.3", 5000)))
    assert refused is not None and refused.status == 403
    assert refused.body()["error"]["type"] == "permission_error"
    assert "loopback" in refused.message


def test_with_a_token_it_decides_wherever_the_caller_is(tmp_path):
    settings = settings_with(tmp_path, '[metrics]\ntoken = "s3cret"\n')
    for client in (("127.0.0.1", 1), ("10.1.2.3", 1)):
        assert check_access(settings, request_from(client, "Bearer s3cret")) is None
        for wrong in (None, "Bearer nope", "Basic s3cret", "s3cret"):
            refused = check_access(settings, request_from(client, wrong))
            assert refused is not None and refused.status == 401


def test_metrics_section_is_typed_and_token_comes_from_the_environment(tmp_path):
    config = tmp_path / "heliograph.toml"
    config.write_text("[metrics]\nenabled = false\n")
    settings = load_settings(str(config), environ={"HELIOGRAPH_METRICS_TOKEN": "from-env"})
    assert settings.metrics_enabled is False and settings.metrics_token == "from-env"


def record(**fields):
    rec = new_record("r1", 0.0, "/v1/chat/completions")
    rec.update(fields)  # type: ignore[typeddict-item]
    return rec


def value(sink, name, **labels):
    return sum(s.value for metric in sink.registry.collect() for s in metric.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def attempt(status, error):
    return {"model": "m", "provider": "p", "status": status, "latency_ms": 1.0, "error": error}


def test_upstream_errors_are_told_apart_by_kind():
    assert upstream_error_kind(attempt(504, "provider 'p' did not answer in time (u)")) == \
        "timeout"
    assert upstream_error_kind(attempt(502, "could not connect to provider 'p' at u: x")) == \
        "connection"
    assert upstream_error_kind(attempt(502, "provider 'p' closed the connection without a "
                                            "complete answer")) == "connection"
    assert upstream_error_kind(attempt(504, "Gateway Timeout")) == "status"  # the provider's
    assert upstream_error_kind(attempt(500, "boom")) == "status"


def test_a_429_without_attempts_is_a_rate_limit_or_a_budget_refusal():
    sink = MetricsSink()
    sink.accept(record(status=429, model="m", organization="o",
                       error="rate limit exceeded: policy '1;w=60' (...)"))
    sink.accept(record(status=429, model="m", organization="o",
                       error="budget_exceeded: spend 10.0 >= limit 10.0"))
    # A provider's own 429 is neither: it is an upstream error.
    sink.accept(record(status=429, model="m", provider="p", error="slow down",
                       attempts=[attempt(429, "slow down")]))
    assert value(sink, "heliograph_ratelimit_refusals_total", organization="o") == 1
    assert value(sink, "heliograph_budget_refusals_total", organization="o") == 1
    assert value(sink, "heliograph_upstream_errors_total", kind="status") == 1


def test_model_labels_are_capped():
    sink = MetricsSink()
    for i in range(MAX_SERIES + 50):
        sink.accept(record(status=200, model=f"random-{i}", latency_ms=1.0))
    models = {s.labels["model"] for metric in sink.registry.collect() for s in metric.samples
              if s.name == "heliograph_requests_total"}
    assert len(models) == MAX_SERIES + 1 and "other" in models
    assert value(sink, "heliograph_requests_total") == MAX_SERIES + 50


def test_multiprocess_folder_is_fresh_and_stale_ones_are_removed(tmp_path):
    settings = settings_with(tmp_path, f'[storage]\njournal_dir = "{tmp_path / "j"}"\n')
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / "j" / f"metrics-{dead}"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"old counts")
    mine = tmp_path / "j" / f"metrics-{os.getpid()}"
    mine.mkdir()
    (mine / "counter_2.db").write_bytes(b"a previous run in this pid")
    env: dict[str, str] = {}
    folder = prepare_multiprocess_dir(settings, env)
    assert folder == mine and env[MULTIPROC_ENV] == str(mine)
    assert list(mine.iterdir()) == [] and not stale.exists()


def test_disabled_metrics_leave_the_environment_alone(tmp_path):
    settings = settings_with(tmp_path, "[metrics]\nenabled = false\n")
    env: dict[str, str] = {}
    assert prepare_multiprocess_dir(settings, env) is None and env == {}


def test_journal_gauges_count_waiting_segments_and_the_oldest_age(tmp_path):
    now = time.time()
    for name, data, age in (("1-1-0.jsonl", b'{"id": "a"}\n', 30), ("1-2-0.jsonl", b"{}\n", 5),
                            ("2-1-0.jsonl", b"", 600),  # an idle worker's open segment
                            ("background.lock", b"x", 900)):
        (tmp_path / name).write_bytes(data)
        os.utime(tmp_path / name, (now - age, now - age))
    gauges = {m.name: m.samples[0].value for m in JournalCollector(tmp_path).collect()}
    assert gauges["heliograph_journal_segments"] == 2
    assert gauges["heliograph_journal_bytes"] == len(b'{"id": "a"}\n') + 3
    assert 30 <= gauges["heliograph_journal_writer_lag_seconds"] < 60


def test_journal_gauges_are_zero_when_nothing_waits(tmp_path):
    gauges = {m.name: m.samples[0].value for m in JournalCollector(tmp_path / "gone").collect()}
    assert gauges == {"heliograph_journal_segments": 0, "heliograph_journal_bytes": 0,
                      "heliograph_journal_writer_lag_seconds": 0}


def test_paths_with_ids_are_counted_by_route():
    sink = MetricsSink()
    for i in range(5):
        sink.accept(record(status=200, model="", path=f"/v1/files/file-{i}/content"))
    sink.accept(record(status=200, model="", path="/v1/batches/batch_1/cancel"))
    sink.accept(record(status=200, model="", path="/files/file-9"))
    paths = {s.labels["path"] for metric in sink.registry.collect() for s in metric.samples
             if s.name == "heliograph_requests_total"}
    assert paths == {"/v1/files/{id}/content", "/v1/batches/{id}/cancel", "/files/{id}"}
