"""The rest of OpenAI's API, relayed to OpenAI-compatible providers and logged:
`/v1/completions`, `/v1/moderations`, `/v1/images/*`, `/v1/audio/*`, files and batches.

Unlike chat, nothing is translated: the caller's request goes to the provider as it
came (only a `provider/model` name is shortened to the provider's), and the provider's
answer comes back as it came — JSON, an event stream (`stream: true` completions), audio
bytes or a file's content. What the gateway adds is what it adds to chat: auth, the
Helicone headers (properties, user, session, request id, rate-limit policies, omit), and
one log record with tokens and cost (heliograph/media_costs.py).

Uploads (multipart/form-data) stream through: the form is read as it passes
(formats/openai/multipart.py) only far enough to find `model` (held meanwhile, on disk
past `max_body_mb`: proxy/upload_prefix.py), then relayed as it arrives, counted against
`[limits] max_upload_mb`; answers stream back the same way (proxy/passthrough_answer.py).
Which provider: the model's (routing as for chat); files and batches name no model,
so `Helicone-Target-Provider` (default `openai`) chooses. Not here: caching, retries and
fallback chains (chat only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from heliograph.asgi import ClientDisconnected, Request
from heliograph.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
)
from heliograph.providers.base import Call, Operation, Provider
from heliograph.proxy.auth import check_models
from heliograph.proxy.flow import Arrival, Flow, Send
from heliograph.proxy.fronts import OPENAI
from heliograph.proxy.models import BYOK_DEFAULT_PROVIDER, TARGET_PROVIDER_HEADER
from heliograph.proxy.passthrough_answer import Relayed
from heliograph.proxy.pipeline import admit, check_limits, forward_headers, guarded, parse_body
from heliograph.proxy.upload_prefix import UploadPrefix
from heliograph.routes import Route

if TYPE_CHECKING:
    from heliograph.app import Gateway
    from heliograph.formats.openai.multipart import FormSniffer


@dataclass(frozen=True)
class Endpoint:
    """One relayed OpenAI endpoint."""

    kind: str                       # how it is priced (media_costs.price)
    body: str = "json"              # "json", "multipart" or "none"
    default_model: str | None = None
    # False: the request names no model (files, batches): the provider comes from
    # Helicone-Target-Provider.
    routed_by_model: bool = True


async def _not_an_operation(provider: Provider, call: Call):
    raise AssertionError("relayed requests are sent by Provider.open_passthrough")


# What a relayed request's Flow holds as its operation (Flow wants one); never run.
RELAYED = Operation("passthrough", _not_an_operation, None)


def handler(endpoint: Endpoint):
    async def relay(gw: Gateway, request: Request, send: Send) -> None:
        await _relay(Arrival(gw, request, send, OPENAI, RELAYED), endpoint)
    return relay


class _Upload:
    """The caller's body as it is relayed: what was read already, then the rest, counted."""

    def __init__(self, request: Request, prefix: UploadPrefix, more: bool, limit: int,
                 sniffer: FormSniffer) -> None:
        self.request, self.prefix, self.more = request, prefix, more
        self.limit, self.sniffer = limit, sniffer
        self.size = prefix.size
        self.too_large = False
        self.gone = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.size = self.prefix.size        # (a renamed model changes it a little)
        async for chunk in self.prefix.replay():
            yield chunk
        while self.more:
            message = await self.request.receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            self.more = message.get("more_body", False)
            self.size += len(chunk)
            if self.size > self.limit:
                self.too_large = True
                raise PayloadTooLarge(_too_large(self.limit))
            self.sniffer.feed(chunk)
            if chunk:
                yield chunk


def _too_large(limit: int) -> str:
    return (f"the upload is larger than the {limit / (1024 * 1024):g} MB limit "
            "([limits] max_upload_mb)")


async def _relay(arrival: Arrival, endpoint: Endpoint) -> None:
    flow = await admit(arrival)
    if flow is not None:
        await guarded(flow, lambda flow: _serve(flow, endpoint))


async def _read_form(request: Request, sniffer: FormSniffer, prefix: UploadPrefix,
                     limit: int, field: str) -> bool:
    """Read the upload into `prefix` until `field` is complete or the body ends; whether
    more follows."""
    more = True
    while more and field not in sniffer.done_fields:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if prefix.size + len(chunk) > limit:
            raise PayloadTooLarge(_too_large(limit))
        sniffer.feed(chunk)
        await prefix.add(chunk)
    return more


async def _serve(flow: Flow, endpoint: Endpoint) -> None:
    gw, request, exchange = flow.gw, flow.request, flow.exchange
    content_type = request.headers.get("content-type")
    body: dict = {}
    data: bytes | AsyncIterator[bytes] | None = None
    upload: _Upload | None = None
    model: str | None = None
    if endpoint.body == "json":
        raw = await request.body(gw.settings.max_body_bytes)
        try:
            body = parse_body(raw)
        except GatewayError:
            exchange.set_request(raw.decode("utf-8", "replace")[:100_000])
            raise
        exchange.set_request(body)
        model = _model_of(body.get("model"), endpoint)
        data, content_type = raw, "application/json"
    elif endpoint.body == "multipart":
        # Imported on the first upload: the form parser (python-multipart, ~0.3 MB a
        # worker) is not on the path of JSON calls, and most workers never see a form.
        from heliograph.formats.openai.multipart import FormSniffer, boundary_of

        limit = gw.settings.max_upload_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(_too_large(limit))
        boundary = boundary_of(content_type or "")
        if boundary is None:
            raise BadRequest("this endpoint takes a multipart/form-data body",
                             code="invalid_content_type")
        sniffer = FormSniffer(boundary)
        # Only the start of the form is read before routing: up to the model field,
        # or nothing when the provider is not chosen by model (files).
        prefix = UploadPrefix(gw.settings.max_body_bytes)
        more = True
        if endpoint.routed_by_model:
            try:
                more = await _read_form(request, sniffer, prefix, limit, "model")
            except BaseException:
                prefix.close()
                raise
        body = sniffer.fields
        model = _model_of(body.get("model"), endpoint)
        upload = _Upload(request, prefix, more, limit, sniffer)
        exchange.set_request(sniffer.summary)
    user = body.get("user")
    if exchange.record["user_id"] is None and isinstance(user, str) and user:
        exchange.record["user_id"] = user
    exchange.record["model"] = model
    provider, upstream_model = _target(flow, model)
    if upstream_model is not None and model is not None and upstream_model != model:
        if endpoint.body == "json":
            body = dict(body, model=upstream_model)
            data = orjson.dumps(body)
        elif upload is not None:
            from heliograph.formats.openai.multipart import with_field_value

            rewritten = with_field_value(upload.prefix.tail, "model", model, upstream_model)
            if rewritten is None:
                upload.prefix.close()
                raise BadRequest("the form's model field could not be read",
                                 code="invalid_multipart")
            upload.prefix.tail = rewritten
    if upload is not None:
        data = upload.chunks()
    await check_limits(flow)
    strip_usage = False
    if endpoint.kind == "completion" and body.get("stream") is True and \
            flow.options.stream_usage and not _include_usage(body):
        body = dict(body, stream_options=dict(body.get("stream_options") or {},
                                              include_usage=True))
        data, strip_usage = orjson.dumps(body), True
    call = Call(body, None, forward_headers(request.headers,
                                            flow.principal.provider_authorization is not None),
                flow.principal.provider_authorization)
    path = request.path.removeprefix("/v1")
    query = request.scope.get("query_string", b"")
    if query:
        path += "?" + query.decode("latin-1")
    exchange.start_attempt()
    try:
        opened = provider.open_passthrough(call, request.method, path, data, content_type)
        relayed = Relayed(flow, endpoint.kind, provider, upstream_model, body, strip_usage)
        async with opened as (status, headers, chunks):
            await relayed.send(status, headers, chunks)
    except GatewayError as exc:
        failure = exc
        if upload is not None:
            upload.prefix.close()
        if upload is not None and upload.too_large:
            failure = PayloadTooLarge(_too_large(upload.limit))
        if upload is not None and upload.gone:
            raise ClientDisconnected() from None
        if not exchange.record["attempts"]:
            exchange.end_attempt(provider.name, upstream_model or "", failure.status,
                                 failure.message)
        raise failure from None
    if flow.options.ratelimit_policy:
        gw.ratelimits.settle(flow.principal, flow.options, exchange.record)


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _model_of(value: Any, endpoint: Endpoint) -> str | None:
    if not endpoint.routed_by_model:
        return value if isinstance(value, str) and value else None
    if value is None and endpoint.default_model:
        return endpoint.default_model
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("you must provide a model parameter (a non-empty string)",
                         code="model_required")
    return value


def _target(flow: Flow, model: str | None) -> tuple[Provider, str | None]:
    """(the provider, the model as it knows it)."""
    gw = flow.gw
    if model is None:
        name = (flow.request.headers.get(TARGET_PROVIDER_HEADER)
                or BYOK_DEFAULT_PROVIDER).strip().lower()
        if name not in gw.settings.providers:
            raise BadRequest(f"Helicone-Target-Provider names {name!r}, which is not a "
                             "configured provider; known: "
                             f"{', '.join(sorted(gw.settings.providers))}",
                             code="provider_not_found")
        return gw.registry.provider(name), None
    if flow.principal.allowed_models is not None:
        check_models(flow.principal, [model])
    target = gw.registry.resolve(model)
    return target.provider, target.model


ENDPOINTS: list[tuple[str, str, Endpoint]] = [
    ("POST", "/v1/completions", Endpoint("completion")),
    ("POST", "/v1/moderations", Endpoint("moderation", default_model="omni-moderation-latest")),
    ("POST", "/v1/images/generations", Endpoint("image", default_model="dall-e-2")),
    ("POST", "/v1/images/edits", Endpoint("image", "multipart", "dall-e-2")),
    ("POST", "/v1/images/variations", Endpoint("image", "multipart", "dall-e-2")),
    ("POST", "/v1/audio/speech", Endpoint("speech")),
    ("POST", "/v1/audio/transcriptions", Endpoint("transcription", "multipart")),
    ("POST", "/v1/audio/translations", Endpoint("transcription", "multipart")),
    ("POST", "/v1/files", Endpoint("free", "multipart", routed_by_model=False)),
    ("GET", "/v1/files", Endpoint("free", "none", routed_by_model=False)),
    ("GET", "/v1/files/{file_id}", Endpoint("free", "none", routed_by_model=False)),
    ("DELETE", "/v1/files/{file_id}", Endpoint("free", "none", routed_by_model=False)),
    ("GET", "/v1/files/{file_id}/content", Endpoint("free", "none", routed_by_model=False)),
    ("POST", "/v1/batches", Endpoint("free", routed_by_model=False)),
    ("GET", "/v1/batches", Endpoint("free", "none", routed_by_model=False)),
    ("GET", "/v1/batches/{batch_id}", Endpoint("free", "none", routed_by_model=False)),
    ("POST", "/v1/batches/{batch_id}/cancel",
     Endpoint("free", "none", routed_by_model=False)),
]


def routes() -> list[Route]:
    """Each endpoint with and without /v1, as chat is served (a client's base URL may
    lack it)."""
    return [Route(method, prefix + path.removeprefix("/v1"), handler(endpoint))
            for method, path, endpoint in ENDPOINTS for prefix in ("/v1", "")]

