"""What an alert rule, a budget, a channel and a per-request webhook are, and the checks
that turn a JSON body from the API into one (a mistake is a 400 naming the field).

The shapes are PRODUCT.md's "Alerts, budgets and webhooks". A webhook channel or a
per-request webhook gets a signing secret at creation, answered once and never listed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from heliograph.alerts.windows import WINDOWS
from heliograph.errors import BadRequest

# Budgets are checked on the proxy path: this module must not import heliograph.analytics
# (the query API's read side) at load time; the names filters share live apart.
from heliograph.filter_names import (
    EQUALITY_KEYS,
    MAX_PROPERTY_FILTERS,
    MAX_VALUE_CHARS,
    PROPERTY_PREFIX,
)

if TYPE_CHECKING:
    from heliograph.analytics.filters import RequestFilter

METRICS = ("cost", "requests", "errors", "error_rate", "latency_p95", "tokens")
# Rate metrics: meaningless on a handful of requests, hence min_requests.
RATE_METRICS = ("error_rate", "latency_p95")
GROUP_DIMENSIONS = ("user_id", "model", "provider")
CHANNEL_TYPES = ("webhook", "slack", "email")
BUDGET_PERIODS = WINDOWS
SCOPE_KEYS = ("key_id", "user_id")
MAX_NAME_CHARS = 200
MAX_CHANNELS = 10
MAX_EMAILS = 20
MAX_URL_CHARS = 2048
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


def new_secret() -> str:
    # secrets imports hmac, which maps OpenSSL's libcrypto (~3.5 MB RSS): the query API
    # makes ids and secrets, the background host that imports this module never does.
    import secrets

    return "whsec_" + secrets.token_hex(24)


def new_id(prefix: str) -> str:
    import secrets

    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass
class Rule:
    id: str
    organization: str
    name: str
    metric: str
    threshold: float
    window: str
    filter: dict[str, Any]
    group_by: str | None
    min_requests: int
    channels: list[dict]
    created_at: str = ""
    updated_at: str = ""

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "metric": self.metric,
                "threshold": self.threshold, "window": self.window, "filter": self.filter,
                "group_by": self.group_by, "min_requests": self.min_requests,
                "channels": public_channels(self.channels),
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass
class Budget:
    id: str
    organization: str
    name: str
    scope: dict[str, str]
    limit_usd: float
    period: str
    enforce: bool
    alert_at: list[float]
    channels: list[dict]
    created_at: str = ""
    updated_at: str = ""

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "scope": self.scope,
                "limit_usd": self.limit_usd, "period": self.period,
                "enforce": self.enforce, "alert_at": self.alert_at,
                "channels": public_channels(self.channels),
                "created_at": self.created_at, "updated_at": self.updated_at}

    def matches(self, key_id: str | None, user_id: str | None,
                properties: dict[str, Any]) -> bool:
        """Whether a request with these attributes is in the budget's scope."""
        for name, value in self.scope.items():
            if name == "key_id":
                if key_id != value:
                    return False
            elif name == "user_id":
                if user_id != value:
                    return False
            else:  # property.<name>; `properties` has lower-cased names
                found = properties.get(name[len(PROPERTY_PREFIX):])
                if found is None or str(found) != value:
                    return False
        return True


@dataclass
class RequestWebhook:
    id: str
    organization: str
    url: str
    secret: str
    sample_rate: float
    filter: dict[str, Any] = field(default_factory=dict)
    include_bodies: bool = False
    created_at: str = ""

    def public(self) -> dict:
        return {"id": self.id, "url": self.url, "sample_rate": self.sample_rate,
                "filter": self.filter, "include_bodies": self.include_bodies,
                "created_at": self.created_at}


def public_channels(channels: list[dict]) -> list[dict]:
    """Channels as listed: never the signing secret."""
    return [{k: v for k, v in ch.items() if k != "secret"} for ch in channels]


# -- checks ---------------------------------------------------------------------------
def _name(body: dict, required: bool = True) -> str | None:
    name = body.get("name")
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME_CHARS} "
                         "characters")
    return name


def _number(value: Any, what: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < low:
        raise BadRequest(f"{what} must be a number of at least {low:g}, got {value!r}")
    return float(value)


def _choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BadRequest(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _url(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) \
            or len(value) > MAX_URL_CHARS or any(c.isspace() for c in value):
        raise BadRequest(f"{what} must be an http:// or https:// URL")
    return value


def check_filter(value: Any) -> dict[str, Any]:
    """A rule's or webhook's filter: the query API's equality filters and property.<Name>
    (names lower-cased, as the query API treats them)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest('filter must be an object, e.g. {"model": "gpt-4o", '
                         '"property.Workflow": "triage"}')
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name.startswith(PROPERTY_PREFIX) and len(name) > len(PROPERTY_PREFIX):
            name = PROPERTY_PREFIX + name[len(PROPERTY_PREFIX):].lower()
        elif name not in EQUALITY_KEYS:
            raise BadRequest(f"unknown filter {name!r}: use {', '.join(EQUALITY_KEYS)} or "
                             "property.<Name>")
        if name == "status":
            if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
                raise BadRequest(f"filter status must be an HTTP status code, got {item!r}")
        elif name == "cache" and item not in ("hit", "miss"):
            raise BadRequest("filter cache must be 'hit' or 'miss'")
        elif not isinstance(item, str) or len(item) > MAX_VALUE_CHARS:
            raise BadRequest(f"filter {name} must be a string")
        out[name] = item
    if sum(1 for n in out if n.startswith(PROPERTY_PREFIX)) > MAX_PROPERTY_FILTERS:
        raise BadRequest(f"at most {MAX_PROPERTY_FILTERS} property filters")
    return out


def request_filter(flt: dict[str, Any]) -> RequestFilter:
    """A checked filter as the analytics filter compiler takes it."""
    from heliograph.analytics.filters import RequestFilter  # query side only

    out = RequestFilter()
    for name, value in flt.items():
        if name.startswith(PROPERTY_PREFIX):
            out.properties[name[len(PROPERTY_PREFIX):]] = value
        else:
            setattr(out, name, value)
    return out


def record_matches(flt: dict[str, Any], record: dict) -> bool:
    """Whether one finished record passes a filter (per-request webhooks)."""
    properties = {str(k).lower(): v for k, v in (record.get("properties") or {}).items()}
    for name, value in flt.items():
        if name.startswith(PROPERTY_PREFIX):
            found = properties.get(name[len(PROPERTY_PREFIX):])
            if found is None or str(found) != value:
                return False
        elif record.get(name) != value:
            return False
    return True


def check_channels(value: Any, old: list[dict] | None = None) -> list[dict]:
    """Channels with a fresh secret for each new webhook channel. On update a webhook
    channel to the same URL as before keeps its secret (receivers keep verifying)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CHANNELS:
        raise BadRequest(f"channels must be a list of at most {MAX_CHANNELS} channels")
    kept = {ch["url"]: ch["secret"] for ch in old or () if ch.get("type") == "webhook"}
    out = []
    for i, ch in enumerate(value):
        where = f"channels[{i}]"
        if not isinstance(ch, dict):
            raise BadRequest(f'{where} must be an object such as {{"type": "slack", "url": …}}')
        kind = _choice(ch.get("type"), f"{where}.type", CHANNEL_TYPES)
        allowed = {"type", "to"} if kind == "email" else {"type", "url"}
        unknown = sorted(set(ch) - allowed)
        if unknown:
            raise BadRequest(f"{where}: unknown field(s) {', '.join(unknown)} for a {kind} "
                             "channel")
        if kind == "email":
            to = ch.get("to")
            if isinstance(to, str):
                to = [to]
            if not isinstance(to, list) or not to or len(to) > MAX_EMAILS or \
                    not all(isinstance(a, str) and _EMAIL.match(a) for a in to):
                raise BadRequest(f"{where}.to must be a list of 1 to {MAX_EMAILS} email "
                                 "addresses")
            out.append({"type": "email", "to": to})
            continue
        url = _url(ch.get("url"), f"{where}.url")
        if kind == "webhook":
            out.append({"type": "webhook", "url": url,
                        "secret": kept.get(url) or new_secret()})
        else:
            out.append({"type": "slack", "url": url})
    return out


def new_secrets(channels: list[dict], old: list[dict] | None) -> list[dict]:
    """The webhook channels whose secret is new: shown once in the answer."""
    before = {ch.get("secret") for ch in old or ()}
    return [{"url": ch["url"], "signing_secret": ch["secret"]} for ch in channels
            if ch["type"] == "webhook" and ch["secret"] not in before]


def _only(body: Any, fields: frozenset[str]) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; accepted: "
                         f"{', '.join(sorted(fields))}", code="unknown_parameter")
    return body


RULE_FIELDS = frozenset({"name", "metric", "threshold", "window", "filter", "group_by",
                         "min_requests", "channels"})


def _group_by(value: Any) -> str | None:
    if value is None:
        return None
    if value in GROUP_DIMENSIONS:
        return value
    if isinstance(value, str) and value.startswith(PROPERTY_PREFIX) and \
            len(value) > len(PROPERTY_PREFIX):
        return PROPERTY_PREFIX + value[len(PROPERTY_PREFIX):].lower()
    raise BadRequest(f"group_by must be null, {', '.join(GROUP_DIMENSIONS)} or "
                     f"property.<Name>, got {value!r}")


def check_rule(body: Any, organization: str, old: Rule | None = None) -> Rule:
    """A Rule from a POST body, or from a PATCH body applied over `old`."""
    body = _only(body, RULE_FIELDS)
    base = old.public() if old else {}
    merged = {**base, **body}
    min_requests = merged.get("min_requests", 1)
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or \
            not 0 <= min_requests <= 10**9:
        raise BadRequest("min_requests must be a whole number of at least 0")
    channels = (check_channels(body.get("channels"), old.channels if old else None)
                if "channels" in body or old is None else old.channels)
    return Rule(
        id=old.id if old else new_id("alert"), organization=organization,
        name=_name(merged) or "",
        metric=_choice(merged.get("metric"), "metric", METRICS),
        threshold=_number(merged.get("threshold"), "threshold"),
        window=_choice(merged.get("window", "1h"), "window", WINDOWS),
        filter=check_filter(merged.get("filter")),
        group_by=_group_by(merged.get("group_by")),
        min_requests=min_requests, channels=channels,
        created_at=old.created_at if old else "")


BUDGET_FIELDS = frozenset({"name", "scope", "limit_usd", "period", "enforce", "alert_at",
                           "channels"})


def _scope(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 1:
        raise BadRequest('scope must be {} (the organization), {"key_id": …}, '
                         '{"user_id": …} or {"property.<Name>": value}')
    out = {}
    for name, item in value.items():
        if name.startswith(PROPERTY_PREFIX) and len(name) > len(PROPERTY_PREFIX):
            name = PROPERTY_PREFIX + name[len(PROPERTY_PREFIX):].lower()
        elif name not in SCOPE_KEYS:
            raise BadRequest(f"unknown scope {name!r}: use key_id, user_id or "
                             "property.<Name>")
        if not isinstance(item, str) or not item or len(item) > MAX_VALUE_CHARS:
            raise BadRequest(f"scope {name} must be a non-empty string")
        out[name] = item
    return out


def _alert_at(value: Any) -> list[float]:
    if value is None:
        return [50.0, 80.0, 100.0]
    if not isinstance(value, list) or len(value) > 10:
        raise BadRequest("alert_at must be a list of at most 10 percentages, e.g. [50, 80, 100]")
    return sorted({_number(v, "alert_at percentages", 1.0) for v in value})


def check_budget(body: Any, organization: str, old: Budget | None = None) -> Budget:
    body = _only(body, BUDGET_FIELDS)
    base = old.public() if old else {}
    merged = {**base, **body}
    enforce = merged.get("enforce", False)
    if not isinstance(enforce, bool):
        raise BadRequest("enforce must be true or false")
    limit = _number(merged.get("limit_usd"), "limit_usd")
    if limit <= 0:
        raise BadRequest("limit_usd must be above 0")
    channels = (check_channels(body.get("channels"), old.channels if old else None)
                if "channels" in body or old is None else old.channels)
    return Budget(
        id=old.id if old else new_id("budget"), organization=organization,
        name=_name(merged) or "", scope=_scope(merged.get("scope")), limit_usd=limit,
        period=_choice(merged.get("period", "month"), "period", BUDGET_PERIODS),
        enforce=enforce, alert_at=_alert_at(merged.get("alert_at")), channels=channels,
        created_at=old.created_at if old else "")


WEBHOOK_FIELDS = frozenset({"url", "sample_rate", "filter", "include_bodies"})


def check_webhook(body: Any, organization: str) -> RequestWebhook:
    body = _only(body, WEBHOOK_FIELDS)
    rate = _number(body.get("sample_rate", 100), "sample_rate")
    if rate > 100:
        raise BadRequest("sample_rate is a percentage: 0 to 100")
    include = body.get("include_bodies", False)
    if not isinstance(include, bool):
        raise BadRequest("include_bodies must be true or false")
    return RequestWebhook(id=new_id("webhook"), organization=organization,
                          url=_url(body.get("url"), "url"), secret=new_secret(),
                          sample_rate=rate, filter=check_filter(body.get("filter")),
                          include_bodies=include)
