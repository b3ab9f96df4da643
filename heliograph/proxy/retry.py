"""The only backoff in the gateway: Helicone-Retry-* semantics.

Retried: 429, every 5xx, connection failures and timeouts. The delay grows as
min_timeout * factor**n, capped at max_timeout; a provider's `retry-after-ms` /
`retry-after` wins when it asks for longer (still capped, so a caller's max is honoured).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

from heliograph.proxy.headers import RequestOptions


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 0
    factor: float = 2.0
    min_ms: float = 1000.0
    max_ms: float = 10000.0

    @classmethod
    def from_options(cls, opts: RequestOptions) -> RetryPolicy:
        if not opts.retry_enabled:
            return NO_RETRY
        return cls(opts.retry_num, opts.retry_factor, opts.retry_min_ms, opts.retry_max_ms)

    def delay_s(self, retry_number: int, headers: dict[str, str] | None) -> float:
        """Seconds to wait before retry `retry_number` (1 for the first retry)."""
        backoff = min(self.min_ms * self.factor ** (retry_number - 1), self.max_ms)
        asked = provider_retry_after_ms(headers or {})
        if asked is not None:
            backoff = max(backoff, min(asked, self.max_ms))
        return backoff / 1000.0


NO_RETRY = RetryPolicy(0)


def provider_retry_after_ms(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0) * 1000
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # neither seconds nor an HTTP date: no advice
        return None
    return max(parsed.timestamp() - time.time(), 0.0) * 1000
