"""The Vercel AI SDK's default OpenAI path — `openai(model)` is the Responses API — against
Claude and Gemini models through the real gateway (`ai` and `@ai-sdk/openai` from npm,
installed in tests/node_ai_sdk by .ci/run): generateText, streamText, tools over several
steps, generateObject, and a second turn whose earlier answer the SDK sends back as an
`item_reference` (its default, store on), which the gateway resolves from its store."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from servers import ADMIN_KEY

NODE_DIR = Path(__file__).resolve().parent.parent / "node_ai_sdk"


@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest", "gemini-2.0-flash"])
def test_the_vercel_ai_sdk_default_path(gateway, upstream, model):
    node = shutil.which("node")
    assert node, "node is not installed (CI installs it with npm)"
    assert (NODE_DIR / "node_modules" / "@ai-sdk" / "openai").is_dir(), \
        "run `npm ci` in tests/node_ai_sdk (.ci/run does)"
    done = subprocess.run([node, "responses.mjs", gateway.url, ADMIN_KEY, model],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["plain"] == "Echo: hello vercel"
    assert out["plainUsage"]["inputTokens"] > 0 and out["plainUsage"]["outputTokens"] > 0
    assert out["streamed"] == "Echo: stream vercel"
    assert out["toolCalls"] == [["get_weather", {"city": "fake city"}]]
    assert out["toolsText"] == "Echo: sunny"
    assert out["object"]["city"] == "fake city"
    assert out["turn2"] == "Echo: what is my name?"
    # The referenced answer reached the provider as the assistant's turn.
    sent = json.dumps(upstream.received()[-1]["body"])
    assert "Echo: my name is Ada" in sent
