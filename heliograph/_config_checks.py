"""Validation behind heliograph/config.py: a config value is checked against its declared
Option, and every mistake becomes a ConfigError that names the file, the section and the
key — with the closest valid name when the key is unknown (a typo must never fall back
silently to a default, e.g. the real OpenAI URL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """The config file (or a HELIOGRAPH_* variable) is invalid; the message says where."""


@dataclass(frozen=True)
class Option:
    """One key of a config section: its type, the Settings field it sets, its bounds."""

    kind: type                  # bool, int, float, str, or list (of strings: a tuple)
    attr: str                   # the Settings field this key sets
    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None  # strictly greater than
    env: str = ""               # environment variable that overrides the file
    prefixes: tuple[str, ...] = ()  # a non-empty string must start with one of these
    choices: tuple[str, ...] = ()   # a string must be one of these


_EXPECTED = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
             list: "an array of strings"}


def describe(value: Any) -> str:
    """How a TOML value reads in an error message."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def closest(name: str, candidates: list[str]) -> str | None:
    import difflib  # only for a mistake: not loaded by every worker that starts

    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    contained = [c for c in candidates if name and (name in c or c in name)]
    return contained[0] if len(contained) == 1 else None


def _unknown(what: str, suggestion: str | None, valid: list[str]) -> str:
    if suggestion:
        return f"unknown {what} — did you mean {suggestion}?"
    return f"unknown {what}; valid: {', '.join(valid)}"


def check_value(option: Option, value: Any, label: str) -> Any:
    """`value` as the option's type, or a ConfigError naming `label`."""
    kind = option.kind
    if kind is list:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{label} must be {_EXPECTED[kind]}, not {describe(value)}")
        item = Option(str, option.attr, prefixes=option.prefixes, choices=option.choices)
        return tuple(check_value(item, v, f"{label}[{i}]") for i, v in enumerate(value))
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:  # TOML writes 20 for 20.0; a bool is an int to Python, not to us
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise ConfigError(f"{label} must be {_EXPECTED[kind]}, not {describe(value)}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number, not {value}")
    if kind in (int, float):
        if option.above is not None and not value > option.above:
            raise ConfigError(f"{label} must be greater than {option.above:g}, not {value}")
        if option.at_least is not None and value < option.at_least:
            raise ConfigError(f"{label} must be at least {option.at_least:g}, not {value}")
        if option.at_most is not None and value > option.at_most:
            raise ConfigError(f"{label} must be at most {option.at_most:g}, not {value}")
    if kind is str and value and option.prefixes and not value.startswith(option.prefixes):
        raise ConfigError(f"{label} must start with {' or '.join(option.prefixes)}, "
                          f"not {value!r}")
    if kind is str and option.choices and value not in option.choices:
        raise ConfigError(f"{label} must be one of {', '.join(option.choices)}, "
                          f"not {value!r}")
    return value


def parse_env_value(option: Option, text: str) -> Any:
    """An environment variable's text as the option's type."""
    label = f"environment variable {option.env}"
    value: Any = text
    if option.kind is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ConfigError(f"{label} must be true or false, not {text!r}")
        value = lowered in ("true", "1")
    elif option.kind in (int, float):
        try:
            value = option.kind(text)
        except ValueError:
            raise ConfigError(f"{label} must be {_EXPECTED[option.kind]}, "
                              f"not {text!r}") from None
    return check_value(option, value, label)


def check_tables(data: dict[str, Any], sections: dict[str, dict[str, Option]],
                 where: str) -> dict[str, Any]:
    """Every top-level entry of a parsed config file checked against `sections` (plus the
    `[providers.*]` tables, checked by check_provider_table); returns attr → value for the
    keys the file sets."""
    known_sections = [*sections, "providers"]
    values: dict[str, Any] = {}
    for name, content in data.items():
        if name == "providers":
            if not isinstance(content, dict):
                raise ConfigError(f"{where}: providers must be tables like "
                                  "[providers.openai], not " + describe(content))
            continue
        if name not in sections:
            raise ConfigError(f"{where}: " + _unknown_top_level(name, content, sections,
                                                                known_sections))
        if not isinstance(content, dict):
            raise ConfigError(f"{where}: [{name}] must be a table, not {describe(content)}")
        options = sections[name]
        for key, value in content.items():
            option = options.get(key)
            if option is None:
                raise ConfigError(f"{where}: " + _unknown(
                    f"key {key!r} in [{name}]", closest(key, list(options)), list(options)))
            values[option.attr] = check_value(option, value, f"{where}: [{name}] {key}")
    return values


def _unknown_top_level(name: str, content: Any, sections: dict[str, dict[str, Option]],
                       known_sections: list[str]) -> str:
    if isinstance(content, dict):
        # [provider.openai] parses as {"provider": {"openai": {...}}}: show it as written.
        sub = next(iter(content), None)
        dotted = f".{sub}" if sub is not None and isinstance(content[sub], dict) else ""
        suggestion = closest(name, known_sections)
        return _unknown(f"section [{name}{dotted}]",
                        f"[{suggestion}{dotted}]" if suggestion else None, known_sections)
    for section, options in sections.items():
        if name in options:
            return f"key {name!r} must be inside its section: [{section}] {name}"
    return _unknown(f"top-level key {name!r}", None, [f"[{s}]" for s in known_sections])


# The keys a [providers.NAME] table may hold: name → (type, element type for arrays/tables).
PROVIDER_KEYS: dict[str, tuple[type, type | None]] = {
    "type": (str, None),         # wire format: openai, anthropic, gemini, azure
    "base_url": (str, None),     # what the provider's own SDK takes as its base URL
    "api_key": (str, None),      # else the provider's usual environment variable
    "models": (list, str),       # exact model names this provider serves
    "headers": (dict, str),      # extra HTTP headers sent upstream on every call
    "api_version": (str, None),  # Azure OpenAI's api-version
    "responses_api": (bool, None),  # it serves /responses itself (else translated to chat)
}


def check_provider_table(name: str, table: Any, where: str, builtin: bool) -> dict[str, Any]:
    label = f"{where}: [providers.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{label} must be a table, not {describe(table)}")
    for key, value in table.items():
        spec = PROVIDER_KEYS.get(key)
        if spec is None:
            raise ConfigError(f"{where}: " + _unknown(
                f"key {key!r} in [providers.{name}]", closest(key, list(PROVIDER_KEYS)),
                list(PROVIDER_KEYS)))
        kind, item = spec
        if not isinstance(value, kind):
            expected = ("a string" if kind is str else "true or false" if kind is bool
                        else "an array of strings" if kind is list else "a table of strings")
            raise ConfigError(f"{label} {key} must be {expected}, not {describe(value)}")
        elements: list[Any] = (list(value.values()) if isinstance(value, dict)
                               else list(value) if isinstance(value, list) else [])
        bad = next((v for v in elements if item and not isinstance(v, item)), None)
        if bad is not None:
            raise ConfigError(f"{label} {key} must hold only strings, not {describe(bad)}")
    if "type" in table:
        from heliograph.providers.catalog import ADAPTERS

        if table["type"] not in ADAPTERS:
            raise ConfigError(f"{label} type must be one of {', '.join(ADAPTERS)}, "
                              f"not {table['type']!r}")
    base_url = table.get("base_url", "")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{label} base_url must start with http:// or https://, "
                          f"not {base_url!r}")
    if not builtin and not base_url:
        raise ConfigError(f"{label} needs a base_url (it is not a built-in provider)")
    return table
