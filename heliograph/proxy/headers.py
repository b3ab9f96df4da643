"""Helicone-* request headers → one typed options object.

A bad header value is a 400 here, before anything reaches a provider.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from heliograph.asgi import is_whole_number
from heliograph.errors import BadRequest

PROPERTY_PREFIX = "helicone-property-"
# 529 is Anthropic's "overloaded", its 503.
DEFAULT_FALLBACK_CODES = frozenset({429, 500, 502, 503, 504, 529})
DEFAULT_CACHE_TTL_S = 7 * 24 * 3600
MAX_CACHE_TTL_S = 365 * 24 * 3600
MAX_CACHE_BUCKET = 20
TRUE_VALUES = frozenset({"true", "1", "yes", "on"})
FALSE_VALUES = frozenset({"false", "0", "no", "off", ""})


@dataclass
class RequestOptions:
    request_id: str | None = None
    # A Helicone-Request-Id that is not a UUID, as sent: the record gets a fresh id.
    replaced_request_id: str | None = None
    user_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    omit_request: bool = False
    omit_response: bool = False
    stream_usage: bool = True
    # Retries (Helicone-Retry-*): off unless enabled; delays in milliseconds.
    retry_enabled: bool = False
    retry_num: int = 3
    retry_factor: float = 2.0
    retry_min_ms: float = 1000.0
    retry_max_ms: float = 10000.0
    # Fallbacks (Helicone-Fallback-*): models tried after the request's own.
    fallback_models: list[str] = field(default_factory=list)
    fallback_codes: frozenset[int] = DEFAULT_FALLBACK_CODES
    # Cache (Helicone-Cache-*).
    cache_enabled: bool = False
    cache_ttl_s: int = DEFAULT_CACHE_TTL_S
    cache_bucket_max: int = 1
    cache_seed: str | None = None
    cache_ignore_keys: list[str] = field(default_factory=list)
    # Rate-limit policies (Helicone-RateLimit-Policy), parsed by proxy/ratelimit.py.
    ratelimit_policy: str | None = None
    # Where the request goes instead of the model's provider (proxy/target_url.py):
    # Helicone-Target-URL (an origin; the request path is appended) or
    # Helicone-OpenAI-Api-Base (a base URL as the OpenAI SDK takes it).
    target_url: str | None = None
    openai_api_base: str | None = None
    # Helicone-Moderations-Enabled: the input checked first (proxy/moderation.py).
    moderations_enabled: bool = False
    # Helicone-LLM-Security-Enabled: not implemented, so a proxied request asking for it
    # is refused (moderation.refuse_llm_security) rather than served unprotected.
    llm_security_enabled: bool = False
    # Recorded: Helicone-Prompt-Id; Helicone-Model-Override (the model priced).
    prompt_id: str | None = None
    model_override: str | None = None


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


def _text(value: str | None) -> str | None:
    """A header value as the caller meant it. The ASGI layer decodes header bytes as
    latin-1 (cheap, and right for the ASCII most headers are), but clients send UTF-8:
    `café` arrives as `cafÃ©`. Re-decoded only here, for the values we store and filter on;
    bytes that are not valid UTF-8 keep their latin-1 reading."""
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def parse(headers: dict[str, str]) -> RequestOptions:
    """`headers` has lower-case names (ASGI)."""
    opts = RequestOptions()
    # Fast exit: most requests carry no Helicone header at all. The names joined and
    # searched once, in C: half what a loop over the names cost (~0.5 k instructions a
    # header; any() over a generator cost ~3x the loop). A name with "helicone-" further
    # in only means the walk below, which looks at the names' starts.
    if "helicone-" not in " ".join(headers):
        return opts
    for name, value in headers.items():
        if name.startswith(PROPERTY_PREFIX):
            prop = name[len(PROPERTY_PREFIX):]
            if not prop:
                raise BadRequest("Helicone-Property- header needs a name after the prefix",
                                 code="invalid_header")
            opts.properties[prop] = _text(value) or ""
    request_id = headers.get("helicone-request-id")
    if request_id is not None:
        try:
            opts.request_id = str(uuid.UUID(request_id.strip()))
        except ValueError:
            # Helicone replaces an id that is not a UUID rather than refusing the call:
            # the record gets a fresh one, returned in Helicone-Id (PRODUCT.md).
            opts.replaced_request_id = request_id.strip()[:200] or None
    opts.user_id = _text(headers.get("helicone-user-id")) or None
    opts.session_id = _text(headers.get("helicone-session-id")) or None
    path = _text(headers.get("helicone-session-path"))
    if path is not None:
        path = path.strip()
        if not path.startswith("/"):
            path = "/" + path
        opts.session_path = path
    opts.session_name = _text(headers.get("helicone-session-name")) or None
    opts.omit_request = _flag(headers, "helicone-omit-request")
    opts.omit_response = _flag(headers, "helicone-omit-response")
    opts.stream_usage = _flag(headers, "helicone-stream-usage", True)
    _parse_retry(headers, opts)
    _parse_fallback(headers, opts)
    _parse_cache(headers, opts)
    opts.ratelimit_policy = headers.get("helicone-ratelimit-policy") or None
    _parse_routing_and_safety(headers, opts)
    return opts


def _parse_routing_and_safety(headers: dict[str, str], opts: RequestOptions) -> None:
    opts.target_url = headers.get("helicone-target-url", "").strip() or None
    opts.openai_api_base = headers.get("helicone-openai-api-base", "").strip() or None
    opts.moderations_enabled = _flag(headers, "helicone-moderations-enabled")
    opts.llm_security_enabled = _flag(headers, "helicone-llm-security-enabled")
    opts.prompt_id = _text(headers.get("helicone-prompt-id", "").strip()) or None
    override = headers.get("helicone-model-override", "").strip()
    if override:
        if not override.isprintable() or len(override) > 256:
            raise BadRequest("Helicone-Model-Override must be a model name (printable, at "
                             "most 256 characters)", code="invalid_header")
        opts.model_override = override


def _number(headers: dict[str, str], name: str, default: float, low: float, high: float,
            integer: bool = False) -> float:
    value = headers.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise BadRequest(f"header {name} must be a number, got {value!r}",
                         code="invalid_header") from None
    if not low <= number <= high:
        raise BadRequest(f"header {name} must be between {low:g} and {high:g}, got {value!r}",
                         code="invalid_header")
    return number


def _parse_retry(headers: dict[str, str], opts: RequestOptions) -> None:
    opts.retry_enabled = _flag(headers, "helicone-retry-enabled")
    if not opts.retry_enabled:
        return
    opts.retry_num = int(_number(headers, "helicone-retry-num", 3, 0, 10, integer=True))
    opts.retry_factor = _number(headers, "helicone-retry-factor", 2, 1, 10)
    opts.retry_min_ms = _number(headers, "helicone-retry-min-timeout", 1000, 0, 600_000)
    opts.retry_max_ms = _number(headers, "helicone-retry-max-timeout", 10000, 0, 600_000)
    if opts.retry_max_ms < opts.retry_min_ms:
        opts.retry_max_ms = opts.retry_min_ms


def split_list(value: str) -> list[str]:
    """`a,b`, `a, b` and `"a","b"` all mean [a, b]."""
    return [item.strip().strip('"').strip() for item in value.split(",")
            if item.strip().strip('"').strip()]


def _parse_fallback(headers: dict[str, str], opts: RequestOptions) -> None:
    models = headers.get("helicone-fallback-model")
    if models is not None:
        opts.fallback_models = split_list(models)
    codes = headers.get("helicone-fallback-oncodes")
    if codes is not None:
        parsed = set()
        for item in split_list(codes):
            if not is_whole_number(item) or not 400 <= int(item) <= 599:
                raise BadRequest(f"Helicone-Fallback-OnCodes must list HTTP error codes "
                                 f"(400-599), got {codes!r}", code="invalid_header")
            parsed.add(int(item))
        opts.fallback_codes = frozenset(parsed)


def _parse_cache(headers: dict[str, str], opts: RequestOptions) -> None:
    opts.cache_enabled = _flag(headers, "helicone-cache-enabled")
    if not opts.cache_enabled:
        return
    opts.cache_ttl_s = _cache_ttl(headers.get("cache-control"))
    opts.cache_bucket_max = int(_number(headers, "helicone-cache-bucket-max-size", 1, 1,
                                        MAX_CACHE_BUCKET, integer=True))
    opts.cache_seed = headers.get("helicone-cache-seed") or None
    ignore = headers.get("helicone-cache-ignore-keys")
    if ignore:
        opts.cache_ignore_keys = split_list(ignore)


def _cache_ttl(cache_control: str | None) -> int:
    """`s-maxage` over `max-age`; default 7 days; clamped to 365 days."""
    if not cache_control:
        return DEFAULT_CACHE_TTL_S
    found: dict[str, int] = {}
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("max-age", "s-maxage"):
            value = value.strip().strip('"')
            if not is_whole_number(value):
                raise BadRequest(f"Cache-Control {name} must be a whole number of seconds, "
                                 f"got {value!r}", code="invalid_header")
            found[name] = int(value)
    ttl = found.get("s-maxage", found.get("max-age", DEFAULT_CACHE_TTL_S))
    return min(ttl, MAX_CACHE_TTL_S)
