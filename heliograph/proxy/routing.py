"""The fallback chain: try each model in order, each with its own retries.

The chain is the request's `model` (itself maybe `a,b`) followed by
Helicone-Fallback-Model. A step fails over to the next on the fallback codes and on
connection errors / timeouts; any other error is the caller's answer at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from heliograph.errors import BadRequest, GatewayError, ProviderStatusError, UpstreamError
from heliograph.providers.answer_headers import RELAYED_PREFIXES
from heliograph.providers.registry import Registry, Target
from heliograph.proxy.exchange import Exchange
from heliograph.proxy.headers import RequestOptions, split_list
from heliograph.proxy.retry import RetryPolicy, retryable


@dataclass
class Opened:
    """What an attempt returns: the provider's status and headers, the payload the
    pipeline needs on success, and how to release it when the attempt is discarded."""

    status: int
    headers: dict[str, str]
    error_body: bytes
    payload: object
    release: Callable[[], Awaitable[object]] | None = None


@dataclass
class Answer:
    index: int
    target: Target
    opened: Opened


# No model name has control characters; one with CR/LF would also break the
# Helicone-Model-Used response header it is echoed in.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def chain_models(model_field: str, options: RequestOptions) -> list[str]:
    models = split_list(model_field) if "," in model_field else [model_field]
    if not models:
        raise BadRequest(f"model {model_field!r} names no model", code="model_required")
    fallbacks = options.fallback_models
    # Without fallbacks (most requests) no comprehension: in 3.11 one is a call of its own.
    chain = models + [m for m in fallbacks if m not in models] if fallbacks else models
    for model in chain:
        if _CONTROL_CHARACTER.search(model):
            raise BadRequest(f"model name {model!r} contains a control character",
                             code="invalid_model")
    return chain


def resolve_chain(registry: Registry, models: list[str]) -> list[Target]:
    return [registry.resolve(model) for model in models]


async def send(chain: list[Target], options: RequestOptions, exchange: Exchange,
               open_attempt: Callable[[Target], Awaitable[Opened]]) -> Answer:
    failures: list[tuple[Target, GatewayError]] = []
    for index, target in enumerate(chain):
        is_last = index == len(chain) - 1
        error = await _try_step(index, target, options, exchange, open_attempt)
        if isinstance(error, Answer):
            return error
        failures.append((target, error))
        falls_over = isinstance(error, UpstreamError) or error.status in options.fallback_codes
        if is_last or not falls_over:
            break
    if len(chain) == 1 or len(failures) == 1:
        raise failures[-1][1]
    summary = "; ".join(f"{i + 1}) {t.model} ({t.provider.name}): {e.status} {e.message}"
                        for i, (t, e) in enumerate(failures))
    raise GatewayError(f"all {len(failures)} models in the fallback chain failed: {summary}",
                       status=failures[-1][1].status, code="fallback_chain_failed")


async def _try_step(index: int, target: Target, options: RequestOptions, exchange: Exchange,
                    open_attempt) -> Answer | GatewayError:
    provider = target.provider
    retry_number = 0
    policy: RetryPolicy | None = None   # read from the options at the first failure only
    while True:
        exchange.start_attempt()
        headers: dict[str, str] = {}
        try:
            opened = await open_attempt(target)
        except GatewayError as exc:
            # Connection failure, timeout, malformed reply, or an adapter's own error.
            exchange.end_attempt(provider.name, target.model, exc.status, exc.message,
                                 index=index)
            error: GatewayError = exc
            can_retry = isinstance(exc, UpstreamError) or (
                isinstance(exc, ProviderStatusError) and retryable(exc.status))
        else:
            headers = opened.headers
            if opened.status < 400:
                exchange.end_attempt(provider.name, target.model, opened.status, None,
                                     headers, index=index)
                return Answer(index, target, opened)
            message = upstream_message(opened.error_body, opened.status, provider.name)
            exchange.end_attempt(provider.name, target.model, opened.status, message,
                                 headers, index=index)
            exchange.set_response(json_or_text(opened.error_body))
            if opened.release is not None:
                await opened.release()
            error = ProviderStatusError(opened.status, message, opened.error_body,
                                        relayable(headers))
            can_retry = retryable(opened.status)
        if policy is None:
            policy = RetryPolicy.from_options(options)
        if not can_retry or retry_number >= policy.retries:
            return error
        retry_number += 1
        await asyncio.sleep(policy.delay_s(retry_number, headers))


def json_or_text(body: bytes):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")[:10_000]


def upstream_message(body: bytes, status: int, provider: str) -> str:
    """The provider's own error message when it sent one, else a plain description."""
    parsed = json_or_text(body)
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if parsed.get("message"):
            return str(parsed["message"])
    text = parsed if isinstance(parsed, str) else ""
    return f"provider {provider!r} answered {status}" + (f": {text[:300]}" if text else "")


def relayable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith(RELAYED_PREFIXES)}
