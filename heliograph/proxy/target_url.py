"""Helicone-Target-URL and Helicone-OpenAI-Api-Base: a request sent to a base URL the caller
names instead of its model's provider — only to a base on `[proxy] allowed_target_urls`.

The gateway must never make a request to an arbitrary host on a caller's word (a caller
could otherwise reach the gateway's own network, cloud metadata endpoints, …), so a URL
that is not on the list is a 400 before anything is sent, and an empty list (the default)
allows none.

  - Helicone-Target-URL is an origin, as Helicone takes it: the request's own path is
    appended (`https://llm.internal` + `/v1/chat/completions`).
  - Helicone-OpenAI-Api-Base is a base URL as the OpenAI SDK takes it
    (`https://llm.internal/v1`): the operation's path (`/chat/completions`) is appended.
A URL is allowed when it is one of the listed bases or lies under one (`/` boundaries;
scheme and host compared case-insensitively). It is spoken to as an OpenAI-compatible
server. Credentials: a provider configured at that very base URL lends its key and name;
otherwise only the caller's own provider key (bring-your-own-key) is sent, and without
one the request goes without a key — a gateway key is never forwarded.
"""

from __future__ import annotations

import urllib.parse

from heliograph.errors import BadRequest
from heliograph.providers.registry import Registry, Target


def _normalise(url: str, header: str) -> str:
    """scheme://host[:port]/path without a trailing slash; BadRequest for anything
    that is not a plain http(s) URL (credentials, query and fragment included)."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port  # a malformed port raises here
    except ValueError:
        raise BadRequest(f"{header} is not a valid URL: {url!r}", code="invalid_header") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{header} must be an http(s) URL, got {url!r}", code="invalid_header")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadRequest(f"{header} must be a base URL without credentials, query or "
                         f"fragment, got {url!r}", code="invalid_header")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    if "/../" in path + "/" or "/./" in path + "/":
        raise BadRequest(f"{header} must not contain dot segments, got {url!r}",
                         code="invalid_header")
    return f"{parts.scheme.lower()}://{netloc}{path}"


def allowed(url: str, allow_list: tuple[str, ...]) -> bool:
    for base in allow_list:
        base = _normalise(base, "[proxy] allowed_target_urls")
        if url == base or url.startswith(base + "/"):
            return True
    return False


def chain(registry: Registry, path: str, options, models: list[str]) -> list[Target] | None:
    """Every model of the chain sent to the caller's target, or None when the request
    names no target."""
    if options.target_url is not None:
        header, url = "Helicone-Target-URL", options.target_url
    elif options.openai_api_base is not None:
        header, url = "Helicone-OpenAI-Api-Base", options.openai_api_base
    else:
        return None
    normalised = _normalise(url, header)
    if header == "Helicone-Target-URL" and path.startswith("/v1/") \
            and not normalised.endswith("/v1"):
        normalised += "/v1"  # the origin plus the request's path, as Helicone does
    allow_list = registry.settings.allowed_target_urls
    if not allowed(normalised, allow_list):  # where the request would actually go
        raise BadRequest(
            f"{header} {url!r} is not on this gateway's allow-list; an administrator can "
            "add its base URL to [proxy] allowed_target_urls"
            + ("" if allow_list else " (empty: no target URL is allowed)"),
            code="target_url_not_allowed")
    provider = registry.at_base_url(normalised)
    return [Target(provider, model) for model in models]
