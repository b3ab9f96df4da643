"""What reaches a provider: the caller's own key only where it belongs, never a gateway
key, never the gateway's key steered to the caller's OpenAI account, never a redirect
followed (it would re-send the prompt and the key to wherever Location points)."""

import json
import urllib.error
import urllib.request

import pytest
from servers import ADMIN_KEY

CALLER_KEY = "sk-caller-own-key-123"
USER = [{"role": "user", "content": "hi"}]


def call(gateway, path, body=None, headers=None, method=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(gateway.url + path, data=data, method=method or (
        "POST" if data else "GET"), headers={"Content-Type": "application/json",
                                             **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read() or b"null")


def carrying(requests, secret):
    return [r for r in requests if any(secret in v for v in r["headers"].values())]


BYOK = {"Helicone-Auth": f"Bearer {ADMIN_KEY}", "Authorization": f"Bearer {CALLER_KEY}"}


def test_byok_model_list_sends_the_callers_key_to_openai_only(gateway, upstream):
    upstream.clear()
    status, _, payload = call(gateway, "/v1/models", headers=BYOK)
    assert status == 200 and payload["data"]
    sent = carrying(upstream.received(), CALLER_KEY)
    # groq, mistral, anthropic, gemini, azure and the keyless local server are all
    # configured on this upstream: none of them may see the caller's OpenAI key.
    assert len(sent) == 1, [(r["path"], sorted(r["headers"])) for r in sent]
    assert sent[0]["headers"]["authorization"] == f"Bearer {CALLER_KEY}"
    assert "x-api-key" not in sent[0]["headers"]


def test_byok_model_list_for_a_named_provider(gateway, upstream):
    upstream.clear()
    status, _, payload = call(gateway, "/v1/models",
                              headers={**BYOK, "Helicone-Target-Provider": "anthropic"})
    assert status == 200, payload
    sent = carrying(upstream.received(), CALLER_KEY)
    assert len(sent) == 1 and sent[0]["headers"]["x-api-key"] == CALLER_KEY
    status, _, payload = call(gateway, "/v1/models",
                              headers={**BYOK, "Helicone-Target-Provider": "nope"})
    assert status == 400 and "Helicone-Target-Provider" in payload["error"]["message"]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "anthropic/claude-3-5-haiku-latest",
                                   "gemini/gemini-2.5-flash"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_redirect_is_a_502_and_never_followed(gateway, upstream, model, stream):
    upstream.clear()
    status, headers, payload = call(
        gateway, "/v1/chat/completions", {"model": model, "messages": USER, "stream": stream},
        {"Authorization": f"Bearer {ADMIN_KEY}", "x-fake-behavior": "redirect-307"})
    assert status == 502, payload
    assert "redirect (HTTP 307" in payload["error"]["message"]
    assert payload["error"]["code"] == "upstream_redirect"
    paths = [r["path"] for r in upstream.received()]
    assert paths and not [p for p in paths if p.startswith("/redirected")], paths
    assert gateway.record(headers["helicone-id"])["status"] == 502


def test_a_gateway_key_in_authorization_is_never_forwarded(gateway, upstream):
    upstream.clear()
    status, _, payload = call(gateway, "/v1/chat/completions",
                              {"model": "gpt-4o-mini", "messages": USER},
                              {"Helicone-Auth": f"Bearer {ADMIN_KEY}",
                               "Authorization": f"Bearer {ADMIN_KEY}"})
    assert status == 200, payload
    assert not carrying(upstream.received(), ADMIN_KEY)
    assert upstream.received()[-1]["headers"]["authorization"] == "Bearer sk-upstream-openai"


@pytest.mark.parametrize("byok", [False, True])
def test_openai_account_headers_go_only_with_the_callers_own_key(gateway, upstream, byok):
    upstream.clear()
    auth = BYOK if byok else {"Authorization": f"Bearer {ADMIN_KEY}"}
    status, _, payload = call(gateway, "/v1/chat/completions",
                              {"model": "gpt-4o-mini", "messages": USER},
                              {**auth, "OpenAI-Organization": "org-caller",
                               "OpenAI-Project": "proj-caller"})
    assert status == 200, payload
    received = upstream.received()[-1]["headers"]
    assert ("openai-organization" in received) is byok
    assert ("openai-project" in received) is byok


@pytest.mark.parametrize("model", ["vllm/some-model", "ollama/llama3.2", "llama3.2/ollama"])
def test_an_unconfigured_local_provider_is_a_400_not_a_call_to_a_loopback_port(gateway, model):
    status, headers, payload = call(gateway, "/v1/chat/completions",
                                    {"model": model, "messages": USER},
                                    {"Authorization": f"Bearer {ADMIN_KEY}"})
    assert status == 400, payload
    assert payload["error"]["code"] == "provider_not_configured"
    name = model.split("/")[0] if model.startswith(("vllm", "ollama")) else "ollama"
    assert f"[providers.{name}]" in payload["error"]["message"]
    assert gateway.record(headers["helicone-id"])["status"] == 400


def test_a_configured_local_provider_is_called_without_a_key(upstream, tmp_path):
    from servers import Gateway
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}", extra_config=f"""
[providers.ollama]
base_url = "{upstream.url}/v1"
headers = {{ "x-fake-keyless" = "1" }}
""")
    try:
        upstream.clear()
        status, _, payload = call(gw, "/v1/chat/completions",
                                  {"model": "ollama/llama3.2", "messages": USER},
                                  {"Authorization": f"Bearer {ADMIN_KEY}"})
        assert status == 200, payload
        assert "authorization" not in upstream.received()[-1]["headers"]
    finally:
        gw.stop()
