"""A provider's answer headers as the gateway reads them (providers/answer_headers.py),
from a real socket through the pooled client: the lower-cased dict (the last value of a
repeated name, in its first place), the pairs relayed to the caller and the rate limits
the record keeps, worked out once per set of names and the same as reading every answer
anew; relayed values go on as the bytes the provider sent."""

from __future__ import annotations

import asyncio

import pytest

from heliograph.providers.answer_headers import (
    RATELIMIT_HEADERS,
    RELAYED_PREFIXES,
    AnswerHeaders,
    ratelimit_from,
    relayed_raw,
)
from heliograph.providers.http import HttpClient

BODY = b'{"ok":true}'

# Heads a provider might send: nginx-like lower case, capitalised names, a name repeated
# (also in another case), no relayed header at all, a single one, non-ASCII values.
HEADS = {
    "bench": [(b"Server", b"nginx"), (b"Content-Type", b"application/json"),
              (b"x-request-id", b"req_1"), (b"openai-processing-ms", b"312"),
              (b"x-ratelimit-limit-requests", b"30000"),
              (b"x-ratelimit-remaining-requests", b"29999"),
              (b"x-ratelimit-reset-requests", b"2ms"),
              (b"x-ratelimit-limit-tokens", b"150000000"),
              (b"x-ratelimit-remaining-tokens", b"149999990"),
              (b"x-ratelimit-reset-tokens", b"0s")],
    "capitals": [(b"Content-Type", b"application/json"), (b"X-Request-ID", b"req_2"),
                 (b"Retry-After", b"7"), (b"X-RateLimit-Limit-Requests", b"10"),
                 (b"OpenAI-Organization", b"org-x")],
    "repeated": [(b"x-ratelimit-limit-requests", b"1"), (b"Content-Type", b"text/plain"),
                 (b"X-Ratelimit-Limit-Requests", b"2"), (b"openai-model", b"a"),
                 (b"x-ratelimit-limit-requests", b"3"), (b"openai-model", b"b")],
    # As OpenAI answers behind Cloudflare: two set-cookie headers.
    "openai": [(b"date", b"Fri, 04 Dec 2026 23:10:21 GMT"),
               (b"content-type", b"text/event-stream; charset=utf-8"),
               (b"openai-organization", b"org-x"), (b"openai-processing-ms", b"312"),
               (b"x-ratelimit-limit-requests", b"30000"), (b"x-request-id", b"req_3"),
               (b"set-cookie", b"__cf_bm=a; path=/"), (b"set-cookie", b"_cfuvid=b; path=/"),
               (b"cf-ray", b"8f-SJC")],
    "none": [(b"Content-Type", b"application/json"), (b"x-other", b"1")],
    "one": [(b"retry-after", b"30"), (b"Content-Type", b"application/json")],
    "utf8": [(b"Content-Type", b"application/json"), (b"x-request-id", "café".encode()),
             (b"openai-note", "5 €".encode())],
}


def _answer(head: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 200 OK", b"Connection: keep-alive",
             b"Content-Length: %d" % len(BODY)]
    lines += [name + b": " + value for name, value in head]
    return b"\r\n".join(lines) + b"\r\n\r\n" + BODY


async def _serve(answer: bytes) -> tuple[asyncio.AbstractServer, str]:
    """A server that answers every request with `answer`, on a keep-alive connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def _as_read_before(head: list[tuple[bytes, bytes]]):
    """What the gateway made of a head before this module (the dict, the relayed pairs,
    the rate limits), from the names and values as aiohttp decodes them."""
    lower: dict[str, str] = {}
    for name, value in [(b"Connection", b"keep-alive"),
                        (b"Content-Length", b"%d" % len(BODY)), *head]:
        lower[name.decode().lower()] = value.decode("utf-8", "surrogateescape")
    relayed = {k: v for k, v in lower.items() if k.startswith(RELAYED_PREFIXES)}
    limits = {key: lower[name] for name, key in RATELIMIT_HEADERS.items() if name in lower}
    return lower, relayed, limits or None


async def _read_twice(head, streamed: bool) -> list[dict[str, str]]:
    server, url = await _serve(_answer(head))
    client = HttpClient(5, 5)
    got = []
    try:
        for _ in range(2):   # the second answer of these names uses what the first worked out
            if streamed:
                async with client.stream(url, {}, b"{}", "p") as (_, headers, chunks):
                    assert b"".join([c async for c in chunks]) == BODY
            else:
                reply = await client.request("POST", url, {}, b"{}", "p")
                assert reply.body == BODY
                headers = reply.headers
            got.append(headers)
    finally:
        await client.close()
        server.close()
    return got


@pytest.mark.parametrize("streamed", [False, True], ids=["request", "stream"])
@pytest.mark.parametrize("name", list(HEADS))
def test_answer_headers_read_as_every_answer_was_read(name, streamed):
    head = HEADS[name]
    lower, relayed, limits = _as_read_before(head)
    for headers in asyncio.run(_read_twice(head, streamed)):
        assert type(headers) is AnswerHeaders
        assert headers == lower and list(headers) == list(lower)
        # Relayed: lower-case names in the dict's order, each value's bytes as sent.
        assert relayed_raw(headers) == [
            (k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in relayed.items()]
        assert ratelimit_from(headers) == limits
        assert list(ratelimit_from(headers) or {}) == list(limits or {})
        # A copy (what an adapter that changes a header makes: Anthropic's, Gemini's)
        # gives the same pairs: its values go back to the bytes they were decoded from
        # (a UTF-8 value too, which the copy path re-encoded as latin-1 and failed on €).
        copy = dict(headers)
        assert ratelimit_from(copy) == limits
        assert relayed_raw(copy) == relayed_raw(headers)


def test_a_non_ascii_value_is_relayed_as_the_provider_sent_it():
    """Before, a relayed value went through str and back as latin-1: UTF-8 text arrived
    changed (café as caf\\xe9) and a character beyond latin-1 (€) failed the answer."""
    (headers,) = asyncio.run(_read_twice(HEADS["utf8"], streamed=True))[:1]
    assert relayed_raw(headers) == [(b"x-request-id", "café".encode()),
                                    (b"openai-note", "5 €".encode())]


def test_answer_headers_are_read_only():
    """What relayed_raw and ratelimit_from give was worked out when the answer was read:
    changing the dict would not change it, so a change is refused; a copy can change."""
    (headers,) = asyncio.run(_read_twice(HEADS["bench"], streamed=False))[:1]
    for change in (lambda h: h.__setitem__("x-ratelimit-limit-requests", "1"),
                   lambda h: h.__delitem__("x-request-id"), lambda h: h.pop("x-request-id"),
                   lambda h: h.update({"a": "b"}), lambda h: h.setdefault("a", "b"),
                   lambda h: h.popitem(), lambda h: h.clear(),
                   lambda h: h.__ior__({"a": "b"})):
        with pytest.raises(TypeError, match="read-only"):
            change(headers)
    assert headers["x-request-id"] == "req_1"
    copy = {**headers, "content-type": "application/json"}
    assert type(copy) is dict and copy["x-request-id"] == "req_1"
