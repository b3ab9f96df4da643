"""openai-node (from npm, installed in tests/node by `npm ci`) through the gateway: its
default paths beyond chat work, including an upload in openai-node's own field order
(the file first), and translated answers carry OpenAI's null keys."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from servers import ADMIN_KEY

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_openai_node_default_paths(gateway, upstream):
    node = shutil.which("node")
    assert node, "node is not installed (CI installs it with npm)"
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), \
        f"run `npm ci` in {NODE_DIR} first (.ci/run does)"
    done = subprocess.run([node, "openai_surface.mjs", gateway.url, ADMIN_KEY],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"transcript": "Fake transcript of 12000 bytes of audio.",
                    "completion": "Completed after red green blue", "image": True,
                    "flagged": True, "model": "gpt-4o-mini", "nullKeys": True,
                    "zeroMaxTokens": 400}
    sent = [r for r in upstream.received() if r["path"] == "/v1/audio/transcriptions"][-1]
    body = sent["body"]
    assert body.index('name="file"') < body.index('name="model"')   # node's order
    assert 'name="model"\r\n\r\nwhisper-1\r\n' in body
