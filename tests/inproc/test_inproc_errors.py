"""Bad input through the in-process gateway: an error in the caller's API shape (OpenAI's,
or Anthropic's on /v1/messages) with the right status, logged when it was a proxy call."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.anyio

CHAT = "/v1/chat/completions"


def assert_openai_error(body: dict, fragment: str) -> None:
    assert set(body["error"]) >= {"message", "type", "code"}, body
    assert fragment.lower() in body["error"]["message"].lower(), body


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"messages": []}', 400, "model"),
    (b'{"model": "no-such-model-xyz", "messages": []}', 404, "no-such-model-xyz"),
])
async def test_bad_request_bodies_are_openai_errors_and_logged(inproc, body, status, fragment):
    resp = await inproc.post(CHAT, body)
    assert resp.status_code == status
    assert_openai_error(resp.json(), fragment)
    rec = await inproc.record(resp.headers["helicone-id"])
    assert rec["status"] == status and rec["error"]


async def test_unknown_model_reaches_the_sdk_as_not_found(inproc):
    with pytest.raises(openai.NotFoundError) as info:
        await inproc.openai().chat.completions.create(
            model="no-such-model-xyz", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.json()["error"]["code"] == "model_not_found"


async def test_oversized_body_is_413(inproc):
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' \
        + b"x" * (2 * 1024 * 1024) + b'"}]}'  # the harness allows 1 MB
    resp = await inproc.post(CHAT, big)
    assert resp.status_code == 413
    assert_openai_error(resp.json(), "limit")


@pytest.mark.parametrize("key", ["", "sk-hg-not-a-real-key"])
async def test_missing_or_invalid_gateway_key_is_401(inproc, key):
    resp = await inproc.post(CHAT, b'{"model": "gpt-4o-mini", "messages": []}', key=key)
    assert resp.status_code == 401
    assert_openai_error(resp.json(), "gateway key")
    assert resp.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        await inproc.openai(api_key=key or "none").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


async def test_invalid_key_on_the_anthropic_front_is_an_anthropic_error(inproc):
    import anthropic  # here, not at the top: the SDK takes seconds to import
    with pytest.raises(anthropic.AuthenticationError) as info:
        await inproc.anthropic(api_key="sk-hg-not-a-real-key").messages.create(
            model="claude-3-5-haiku-latest", max_tokens=16,
            messages=[{"role": "user", "content": "x"}])
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"


async def test_upstream_500_is_relayed_as_an_openai_error(inproc):
    with pytest.raises(openai.InternalServerError) as info:
        await inproc.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-behavior": "status-500"})
    assert info.value.status_code == 500 and info.value.response.json()["error"]["message"]


async def test_unknown_route_is_404_and_wrong_method_405(inproc):
    resp = await inproc.http.get("/v1/no-such-thing")
    assert resp.status_code == 404
    assert_openai_error(resp.json(), "no route")
    resp = await inproc.http.get(CHAT)
    assert resp.status_code == 405 and "POST" in resp.headers["allow"]
    assert_openai_error(resp.json(), "not allowed")
