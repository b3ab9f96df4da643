"""A real fake-upstream server on a free port, shared by the tests in this folder."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from heliograph.fake_upstream import FakeUpstreamServer


@pytest.fixture(scope="session")
def server():
    with FakeUpstreamServer() as srv:
        yield srv


@pytest.fixture
def client(server):
    import openai  # here: the tests of the raw HTTP behaviour do not need the SDK
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0,
                       timeout=10) as c:
        yield c


@pytest.fixture
def key():
    """A fresh x-fake-counter-key so fail-then-ok counters never collide."""
    return "test-" + uuid.uuid4().hex


class Reply:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def call(server, path: str, body=None, *, behavior: str | None = None, method: str | None = None,
         headers: dict | None = None, auth: str | None = "Bearer sk-test", timeout: float = 10):
    """Plain urllib request; HTTP errors are returned, not raised."""
    hdrs = {"content-type": "application/json", **(headers or {})}
    if auth is not None:
        hdrs["authorization"] = auth
    if behavior is not None:
        hdrs["x-fake-behavior"] = behavior
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, headers=hdrs,
                                 method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read())


def chat_body(text: str = "hello world", model: str = "gpt-4o-mini", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sse_events(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [block[len("data: "):] for block in raw.decode().split("\n\n")
            if block.startswith("data: ")]
