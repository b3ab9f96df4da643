"""Helicone-* request headers → one typed options object.

A bad header value is a 400 here, before anything reaches a provider.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from heliograph.errors import BadRequest

PROPERTY_PREFIX = "helicone-property-"
TRUE_VALUES = frozenset({"true", "1", "yes", "on"})
FALSE_VALUES = frozenset({"false", "0", "no", "off", ""})


@dataclass
class RequestOptions:
    request_id: str | None = None
    user_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    omit_request: bool = False
    omit_response: bool = False
    stream_usage: bool = True


def _flag(headers: dict[str, str], name: str, default: bool = False) -> bool:
    value = headers.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise BadRequest(f"header {name} must be true or false, got {value!r}",
                     code="invalid_header")


def parse(headers: dict[str, str]) -> RequestOptions:
    """`headers` has lower-case names (ASGI)."""
    opts = RequestOptions()
    # Fast exit: most requests carry no Helicone header at all.
    if not any(name.startswith("helicone-") for name in headers):
        return opts
    for name, value in headers.items():
        if name.startswith(PROPERTY_PREFIX):
            prop = name[len(PROPERTY_PREFIX):]
            if not prop:
                raise BadRequest("Helicone-Property- header needs a name after the prefix",
                                 code="invalid_header")
            opts.properties[prop] = value
    request_id = headers.get("helicone-request-id")
    if request_id is not None:
        try:
            opts.request_id = str(uuid.UUID(request_id.strip()))
        except ValueError:
            raise BadRequest(f"Helicone-Request-Id must be a UUID, got {request_id!r}",
                             code="invalid_header") from None
    opts.user_id = headers.get("helicone-user-id") or None
    opts.session_id = headers.get("helicone-session-id") or None
    path = headers.get("helicone-session-path")
    if path is not None:
        path = path.strip()
        if not path.startswith("/"):
            path = "/" + path
        opts.session_path = path
    opts.session_name = headers.get("helicone-session-name") or None
    opts.omit_request = _flag(headers, "helicone-omit-request")
    opts.omit_response = _flag(headers, "helicone-omit-response")
    opts.stream_usage = _flag(headers, "helicone-stream-usage", True)
    return opts
