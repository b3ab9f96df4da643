"""Micro-benchmark: microseconds per record spent in the metrics sink (the hot-path cost).

    python bench/metrics_sink.py            # one process: counters in memory
    python bench/metrics_sink.py --multiprocess   # as under several workers (mmap files)
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time

if "--multiprocess" in sys.argv:  # must be set before prometheus_client is imported
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="heliograph-bench-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], True)

from heliograph.records import new_record  # noqa: E402
from heliograph.sinks.metrics import MetricsSink  # noqa: E402

N = 100_000


def main() -> None:
    sink = MetricsSink()
    records = []
    for i in range(8):  # a few label sets, like a real mix of models and organizations
        rec = new_record(f"r{i}", time.time(), "/v1/chat/completions")
        rec.update({"model": f"gpt-4o-mini-{i % 4}", "model_used": f"gpt-4o-mini-{i % 4}",
                    "provider": "openai", "organization": f"org-{i % 2}", "status": 200,
                    "latency_ms": 120.0, "ttft_ms": 40.0 if i % 2 else None,
                    "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                    "cached_tokens": 0, "cost_usd": 0.0001, "cost_known": True,
                    "attempts": [{"model": "gpt-4o-mini", "provider": "openai",
                                  "status": 200, "latency_ms": 110.0, "error": None}],
                    "fallback_index": 0})
        records.append(rec)
    for rec in records:
        sink.accept(rec)
    started = time.perf_counter()
    for i in range(N):
        sink.accept(records[i & 7])
    elapsed = time.perf_counter() - started
    mode = "multiprocess" if "--multiprocess" in sys.argv else "single process"
    print(f"metrics sink ({mode}): {elapsed / N * 1e6:.2f} µs per record")


if __name__ == "__main__":
    main()
