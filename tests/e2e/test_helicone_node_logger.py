"""Helicone's Node logger (`@helicone/helpers` from npm, installed in tests/node by
`npm ci`) pointed at the gateway: logBuilder, logStream, logSingleRequest and logRequest
each log a call made directly to the provider, read back through the query API."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

from servers import ADMIN_KEY

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_node_logger_methods_are_logged(gateway, upstream):
    node = shutil.which("node")
    assert node, "node is not installed (CI installs it with npm)"
    assert (NODE_DIR / "node_modules" / "@helicone" / "helpers").is_dir(), \
        f"run `npm ci` in {NODE_DIR} first (.ci/run does)"
    tag = uuid.uuid4().hex[:8]
    done = subprocess.run([node, "helicone_logger.mjs", gateway.url, ADMIN_KEY, upstream.url,
                           tag], cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The SDK only prints a failed log: the output must hold no such line.
    assert "Error" not in done.stdout + done.stderr, done.stdout + done.stderr
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    records = {name: gateway.record(request_id) for name, request_id in ids.items()}
    for name, record in records.items():
        assert record["status"] == 200, name
        assert record["model"] == "gpt-4o-mini" and record["provider"] == "openai", name
        assert record["user_id"] == f"node-{tag}" and record["properties"] == {"tag": tag}
        assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0, name
        assert record["cost_known"] is True and record["cost_usd"] > 0, name
        assert record["request"]["messages"][0]["content"] == f"{name} {tag}"
    assert records["request"]["path"] == "/oai/v1/log"
    assert {records[name]["path"] for name in ("builder", "stream", "single")} == \
        {"/custom/v1/log"}
    assert records["single"]["latency_ms"] == 1234
    assert records["builder"]["ttft_ms"] is not None
    assert records["stream"]["ttft_ms"] is not None
