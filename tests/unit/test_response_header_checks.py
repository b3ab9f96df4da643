"""uvicorn's response header checks, remembered (server._KnownValid): a name or value
that passed once is not searched again, and one that fails is refused every time it is
sent, by the gateway's own protocol on a real socket to a real client. The names carry a
capital so that the heads go through uvicorn's own loop (server.OneStepHeadCycle writes
all-lower-case heads without it; tests/unit/test_one_step_head.py)."""

import http.client

import pytest
from uvicorn.protocols.http import httptools_impl

from heliograph.server import _KnownValid
from tests.servers import guarded_uvicorn

ANSWERS = {
    "/ok": (b"X-Check", b"fine"),
    "/bad-value": (b"X-Check", b"a\r\nx-injected: 1"),
    "/bad-name": (b"X check", b"fine"),
}


async def app(scope, receive, send):
    name, value = ANSWERS[scope["path"]]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(name, value), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def port():
    with guarded_uvicorn(app) as port:
        yield port


def get(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_checks_are_remembered_and_invalid_headers_still_refused(port):
    names, values = httptools_impl.HEADER_RE, httptools_impl.HEADER_VALUE_RE
    assert isinstance(names, _KnownValid) and isinstance(values, _KnownValid)
    for _ in range(2):
        resp = get(port, "/ok")
        assert resp.status == 200 and resp.getheader("x-check") == "fine"
    assert b"X-Check" in names and b"fine" in values   # searched once, then looked up

    for path in ("/bad-value", "/bad-name"):
        for _ in range(2):   # refused the second time too: a failure is not remembered
            with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
                get(port, path)
    assert b"a\r\nx-injected: 1" not in values and b"X check" not in names


def test_a_full_memory_starts_over(monkeypatch):
    check = _KnownValid(httptools_impl.HEADER_VALUE_RE.pattern)
    monkeypatch.setattr(_KnownValid, "LIMIT", 3)
    for value in (b"1", b"2", b"3", b"4"):
        assert check.search(value) is None
    assert list(check) == [b"4"]
    assert check.search(b"\x00") is not None
    long = b"x" * (_KnownValid.LONGEST + 1)
    assert check.search(long) is None and long not in check   # valid, not kept
