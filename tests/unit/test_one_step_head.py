"""The response head written in one step (server.OneStepHeadCycle): the same bytes and the
same cycle state as uvicorn's own send for every head, the usual ones without uvicorn's
per-header loop, the rest (a capital in a name, a bad byte, framing headers, an access
log) refused or written by uvicorn exactly as before. And the gateway's protocol uses it."""

import asyncio
import http.client
import logging

import pytest
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from heliograph import server
from heliograph.server import OneStepHeadCycle
from tests.servers import guarded_uvicorn

DEFAULTS = [(b"server", b"uvicorn"), (b"date", b"Fri, 04 Dec 2026 20:00:00 GMT")]
# What the gateway answers: Helicone's headers, the provider's relayed ones, its own.
PROXIED = [(b"helicone-id", b"0193a4b2-7c1d-7abc-8def-0123456789ab"),
           (b"helicone-status", b"success"), (b"helicone-provider", b"openai"),
           (b"helicone-model", b"gpt-4o-mini"), (b"openai-processing-ms", b"312"),
           (b"x-ratelimit-limit-requests", b"30000"), (b"x-request-id", b"req_1"),
           (b"x-ratelimit-reset-tokens", b"0s")]
STREAM = PROXIED + [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
PLAIN = [(b"content-type", b"application/json"), (b"content-length", b"12")] + PROXIED

HEADS = {
    "stream": STREAM,
    "plain": PLAIN,
    "two content-lengths (the first counts)": PLAIN + [(b"content-length", b"99")],
    "no headers of its own": [],
    "a capital in a name": [(b"X-Check", b"a"), (b"content-length", b"0")],
    "a bad value": [(b"x-check", b"a\r\nx-injected: 1")],
    "a bad name": [(b"x check", b"a")],
    "a value with a tab (allowed)": [(b"x-check", b"a\tb")],
    "an empty value": [(b"x-check", b"")],
    "transfer-encoding": [(b"transfer-encoding", b"chunked")],
    "connection: close": STREAM + [(b"connection", b"close")],
    "connection: keep-alive": [(b"connection", b"keep-alive"), (b"content-length", b"0")],
    "content-length not a number": [(b"content-length", b"twelve")],
    "a name that is str": [("x-check", b"a")],
    "a value that is str": [(b"x-check", "a")],
}


class Transport:
    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)

    def close(self):
        self.written.append("closed")

    def is_closing(self):
        return False


class Flow:
    write_paused = False


def cycle(cls, method="POST", keep_alive=True, access_log=False, defaults=DEFAULTS):
    made = RequestResponseCycle(
        scope={"method": method, "type": "http", "http_version": "1.1", "path": "/",
               "query_string": b"", "client": ("127.0.0.1", 1), "headers": []},
        transport=Transport(), flow=Flow(), logger=logging.getLogger("t"),
        access_logger=logging.getLogger("t.access"), access_log=access_log,
        default_headers=list(defaults), message_event=asyncio.Event(),
        expect_100_continue=False, keep_alive=keep_alive, on_response=lambda: None)
    made.__class__ = cls
    return made


def outcome(cls, headers, status=200, **kwargs):
    """What one start message leaves: the bytes written, the error raised, the state."""
    made = cycle(cls, **kwargs)
    try:
        asyncio.run(made.send({"type": "http.response.start", "status": status,
                               "headers": headers}))
        error = None
    except Exception as exc:  # noqa: BLE001  (uvicorn's own refusals compared)
        error = (type(exc), str(exc))
    return (made.transport.written, error, made.response_started, made.chunked_encoding,
            made.expected_content_length, made.keep_alive, made.waiting_for_100_continue)


@pytest.fixture
def uvicorn_sends(monkeypatch):
    """How many starts went to uvicorn's own send (the loop per header)."""
    calls = []

    async def counted(self, message):
        if message["type"] == "http.response.start":
            calls.append(message)
        await RequestResponseCycle.send(self, message)

    monkeypatch.setattr(server, "_RESPONSE_CYCLE_SEND", counted)
    return calls


@pytest.mark.parametrize("name", list(HEADS))
@pytest.mark.parametrize("status, method, keep_alive",
                         [(200, "POST", True), (200, "POST", False), (204, "POST", True),
                          (304, "GET", True), (200, "HEAD", True), (404, "GET", False)])
def test_the_same_head_as_uvicorns(name, status, method, keep_alive):
    headers = HEADS[name]
    mine = outcome(OneStepHeadCycle, headers, status, method=method, keep_alive=keep_alive)
    theirs = outcome(RequestResponseCycle, headers, status, method=method,
                     keep_alive=keep_alive)
    assert mine == theirs


def test_proxied_heads_skip_the_loop_and_the_rest_do_not(uvicorn_sends):
    for name in ("stream", "plain", "two content-lengths (the first counts)",
                 "a value with a tab (allowed)", "an empty value"):
        outcome(OneStepHeadCycle, HEADS[name])
    assert uvicorn_sends == []
    outcome(OneStepHeadCycle, [], defaults=[])  # nothing to join
    for name in ("a capital in a name", "a bad value", "a bad name", "transfer-encoding",
                 "connection: close", "a name that is str", "a value that is str"):
        outcome(OneStepHeadCycle, HEADS[name])
    outcome(OneStepHeadCycle, STREAM, access_log=True)   # uvicorn logs the line
    assert len(uvicorn_sends) == 9


def test_bodies_are_uvicorns():
    for cls in (OneStepHeadCycle, RequestResponseCycle):
        made = cycle(cls)

        async def answer(made=made):
            await made.send({"type": "http.response.start", "status": 200,
                             "headers": STREAM})
            await made.send({"type": "http.response.body", "body": b"data: 1\n\n",
                             "more_body": True})
            await made.send({"type": "http.response.body", "body": b""})

        asyncio.run(answer())
        assert made.transport.written[1:] == [b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]
        assert made.response_complete


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")] + PROXIED})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_gateways_protocol_answers_through_it(uvicorn_sends):
    with guarded_uvicorn(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for _ in range(2):
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.read() == b"ok" and resp.getheader("helicone-model") == "gpt-4o-mini"
        conn.close()
    assert uvicorn_sends == []
    assert isinstance(httptools_impl.RequestResponseCycle, type)  # uvicorn's, untouched
