"""The one pooled upstream HTTP client per process, and the translation of aiohttp's
exceptions into the gateway's error tree (the only place that knows aiohttp's errors)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import sys
from collections.abc import AsyncIterable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

# aiohttp's signals (aiosignal) are frozenlist's FrozenList, whose C extension links the
# C++ runtime: ~1.1 MB RSS in every worker for a class no proxied call touches (a client
# session's trace signals stay empty). frozenlist reads this once, at its import, and
# then uses its pure-Python class, the same API. Set before aiohttp is first imported
# (workers import it here); the background host started by a worker inherits it.
os.environ.setdefault("FROZENLIST_NO_EXTENSIONS", "1")

# OpenSSL finds the system's trust store through these (or its built-in paths), read
# each time a context loads its default certificates.
_TRUST_STORE_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@contextlib.contextmanager
def _no_trust_store() -> Iterator[None]:
    """While inside, an SSL context that loads the default certificates finds none.

    aiohttp builds two SSL contexts when it is imported (aiohttp/connector.py: a verified
    one, a session's default, and one that verifies nothing), and each loads the system's
    ~140 CA certificates: ~2 MB RSS in every worker (bench/README.md, session 17), also
    where no provider speaks https. The gateway never uses them: every call to an https
    URL passes tls_context(), which loads the store once, at the first such call. A
    version of aiohttp that built its contexts later would just load the store then.

    Only where aiohttp is not imported yet (a worker, while its app is built, before any
    thread of its own starts): changing the environment races other threads reading it."""
    if "aiohttp" in sys.modules:
        yield
        return
    saved = {name: os.environ.get(name) for name in _TRUST_STORE_VARIABLES}
    os.environ.update(dict.fromkeys(_TRUST_STORE_VARIABLES, os.devnull))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


with _no_trust_store():
    import aiohttp  # noqa: E402
from aiohttp.streams import EofStream  # noqa: E402

from heliograph.errors import UpstreamError, UpstreamTimeout  # noqa: E402
from heliograph.providers import eager_body  # noqa: E402
from heliograph.providers.answer_headers import answer_headers  # noqa: E402

# Hop-by-hop and framing headers never copied between the two connections.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length", "content-encoding",
    "host", "date", "server",
})


# The answers a provider can give: a success or an error (non-standard ones included,
# such as Anthropic's 529), which the gateway's HTTP server can send on (it knows 100-599).
# A status outside those ranges is a malformed answer. Redirects are never followed
# (allow_redirects=False on every call): following one would re-send the prompt and the
# provider key (x-api-key, x-goog-api-key) to wherever the Location points.
ANSWER_STATUSES = frozenset(range(200, 300)) | frozenset(range(400, 600))


def _standard(status: int, provider: str, headers=None) -> int:
    if 300 <= status < 400:
        where = (headers or {}).get("Location", "nowhere")
        raise UpstreamError(f"provider {provider!r} answered with a redirect (HTTP {status} "
                            f"to {where}); the gateway does not follow redirects, so the "
                            "request and its key were not sent there; check the provider's "
                            "base_url", code="upstream_redirect")
    if status not in ANSWER_STATUSES:
        raise UpstreamError(f"provider {provider!r} answered with HTTP status {status}, "
                            "neither a success nor an error", code="upstream_malformed")
    return status


@dataclass
class UpstreamResponse:
    status: int
    headers: dict[str, str]     # lower-case names
    body: bytes


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The context every https call to a provider is verified with: the system's trust
    store (as SSL_CERT_FILE / SSL_CERT_DIR say), host names checked, HTTP/1.1 offered;
    what aiohttp's default verified context is. Built by the first call that needs it."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(("http/1.1",))
    return context


def tls_for(url: str) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument for a call to url: tls_context() for anything but a
    plain http URL, so no https call is ever left to aiohttp's own contexts (imported
    without certificates: _no_trust_store); for http, aiohttp's default (no TLS)."""
    return True if url.startswith("http:") else tls_context()


class HttpClient:
    def __init__(self, connect_timeout_s: float, read_timeout_s: float):
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop (aiohttp binds a session to its loop).
        if self._session is None:
            # On Python 3.11 the body goes out in the step that sends the request, as
            # aiohttp does it itself from 3.12 (eager_body).
            eager_body.install(asyncio.get_running_loop())
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300,
                                             keepalive_timeout=60)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s,
                                            sock_read=self.read_timeout_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                                  auto_decompress=True,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, url: str, headers: dict[str, str],
                      data: bytes | None = None, provider: str = "") -> UpstreamResponse:
        # try/except rather than `with translate_errors(...)`: this runs for every JSON
        # request, and a generator-based context manager costs more than the mapping.
        calls = eager_body.CALLS
        calls.in_progress += 1
        try:
            async with self.session.request(method, url, headers=headers, data=data,
                                            allow_redirects=False, ssl=tls_for(url)) as resp:
                body = await resp.read()
                return UpstreamResponse(_standard(resp.status, provider, resp.headers),
                                        answer_headers(resp.headers, resp.raw_headers),
                                        body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise translated(exc, provider, url) from None
        finally:
            calls.in_progress -= 1

    def stream(self, url: str, headers: dict[str, str],
               data: bytes | AsyncIterable[bytes] | None, provider: str = "",
               method: str = "POST") -> _Stream:
        """An async context manager giving (status, headers, chunks), chunks an async
        iterator of raw bytes as they arrive; errors while reading are translated too.
        `data` may itself be an async iterator (an upload relayed as it arrives, never
        held whole)."""
        return _Stream(self.session, method, url, headers, data, provider)


class _Stream:
    """HttpClient.stream: a class, not a generator-based context manager (entered on
    every stream, where the generator machinery costs more than the request's own
    bookkeeping)."""

    __slots__ = ("_session", "_method", "_url", "_headers", "_data", "_provider", "_resp")

    def __init__(self, session: aiohttp.ClientSession, method: str, url: str,
                 headers: dict[str, str], data: bytes | AsyncIterable[bytes] | None,
                 provider: str) -> None:
        self._session = session
        self._method = method
        self._url = url
        self._headers = headers
        self._data = data
        self._provider = provider
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> tuple[int, dict[str, str], _Chunks]:
        provider, url = self._provider, self._url
        calls = eager_body.CALLS   # until the answer's head: what eager_body reads
        calls.in_progress += 1
        try:
            resp = self._resp = await self._session.request(
                self._method, url, headers=self._headers, data=self._data,
                allow_redirects=False, ssl=tls_for(url))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise translated(exc, provider, url) from None
        finally:
            calls.in_progress -= 1
        return (_standard(resp.status, provider, resp.headers),
                answer_headers(resp.headers, resp.raw_headers), _Chunks(resp, provider, url))

    async def __aexit__(self, *exc_info: object) -> None:
        if self._resp is not None:
            self._resp.release()


# Called (in the reading task's context) before a body read has to wait for the provider:
# the stream relay starts its watch for the caller leaving then, so an answer that is all
# here already is relayed without one.
UPSTREAM_WAIT: ContextVar[Callable[[], None] | None] = ContextVar("upstream_wait",
                                                                  default=None)


class _Chunks:
    """The body's bytes as they arrive, aiohttp's errors translated. A class rather than
    an async generator: it is iterated on every stream, and a generator costs more (the
    loop tracks each one in a weak set)."""

    __slots__ = ("_content", "_provider", "_url")

    def __init__(self, resp: aiohttp.ClientResponse, provider: str, url: str) -> None:
        self._content = resp.content
        self._provider = provider
        self._url = url

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        content = self._content
        try:
            chunk = content.read_nowait()  # what has arrived (readany, without waiting)
            if not chunk and not content.is_eof():
                hook = UPSTREAM_WAIT.get()
                if hook is not None:
                    hook()
                chunk = await content.readany()
        except EofStream:
            raise StopAsyncIteration from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise translated(exc, self._provider, self._url) from None
        if not chunk:
            raise StopAsyncIteration
        return chunk


@contextlib.contextmanager
def translate_errors(provider: str, url: str):
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise translated(exc, provider, url) from None


# aiohttp's errors by kind, most specific first (ClientConnectorError is a ClientOSError):
# (type, code, message from who, url and the exception).
_TRANSLATIONS = (
    (aiohttp.ClientConnectorError, "upstream_unreachable",
     lambda who, url, exc: f"could not connect to {who} at {url}: {exc.os_error}"),
    (aiohttp.ServerDisconnectedError, "upstream_disconnected",
     lambda who, url, exc: f"{who} closed the connection without a complete answer"),
    (aiohttp.ClientOSError, "upstream_connection_error",
     lambda who, url, exc: f"the connection to {who} failed: {exc.strerror or exc}"),
    (aiohttp.ClientPayloadError, "upstream_truncated",
     lambda who, url, exc: f"{who} sent a truncated or malformed body: {exc}"),
)


def translated(exc: BaseException, provider: str, url: str) -> UpstreamError:
    """The gateway error for an aiohttp exception (or a timeout)."""
    who = f"provider {provider!r}" if provider else "the provider"
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamTimeout(f"{who} did not answer in time ({url})")
    for kind, code, message in _TRANSLATIONS:
        if isinstance(exc, kind):
            return UpstreamError(message(who, url, exc), code=code)
    return UpstreamError(f"error talking to {who}: {exc.__class__.__name__}: {exc}",
                         code="upstream_error")
