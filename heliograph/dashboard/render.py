"""The Jinja2 environment: templates from this package, autoescaped (a prompt holding
`<script>` renders as text), with the few formatting filters the pages share."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def money(value: Any) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:,.2f}"


def ms(value: Any) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def number(value: Any) -> str:
    return "—" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def when(value: Any) -> str:
    """'2024-05-01T12:03:04.123456Z' → '2024-05-01 12:03:04' (UTC, as stored)."""
    if not isinstance(value, str):
        return "—"
    return value[:19].replace("T", " ")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def duration(value: Any) -> str:
    if not value:
        return "0 s"
    seconds = float(value) / 1000
    return str(_dt.timedelta(seconds=round(seconds))) if seconds >= 60 else f"{seconds:.1f} s"


def environment() -> Environment:
    env = Environment(loader=PackageLoader("heliograph.dashboard", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, ms=ms, number=number, percent=percent, when=when,
                       pretty_json=pretty_json, duration=duration)
    env.globals["urlencode"] = lambda pairs: urlencode(list(pairs))
    return env
