"""OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, made whole
for a provider's error answer: OpenAI's SDKs read `type` and `code`, and some
OpenAI-compatible servers send only a message (or plain text). What the provider sent
is kept; only what is missing is filled in."""

from __future__ import annotations

from typing import Any

import orjson

# The `type` OpenAI gives each status.
_TYPES = {400: "invalid_request_error", 401: "authentication_error",
          403: "permission_error", 404: "invalid_request_error", 409: "conflict_error",
          413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error"}


def error_type(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def openai_error(parsed: Any, text: str, status: int, provider: str) -> dict:
    """The OpenAI error object for a provider's error answer (parsed JSON, or its text)."""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        out = dict(error)
    else:
        message = error if isinstance(error, str) and error else (
            parsed.get("message") if isinstance(parsed, dict) else None)
        if not isinstance(message, str) or not message:
            message = f"provider {provider!r} answered {status}" + (
                f": {text[:300]}" if text else "")
        out = {"message": message}
        if isinstance(parsed, dict) and isinstance(parsed.get("code"), (str, int)):
            out["code"] = parsed["code"]
    if not isinstance(out.get("message"), str):
        out["message"] = f"provider {provider!r} answered {status}"
    if not isinstance(out.get("type"), str) or not out["type"]:
        out["type"] = error_type(status)
    out.setdefault("param", None)
    out.setdefault("code", None)
    return {"error": out}


def openai_error_body(raw: bytes, status: int, provider: str) -> bytes:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    text = "" if parsed is not None else raw.decode("utf-8", "replace").strip()
    return orjson.dumps(openai_error(parsed, text, status, provider))
