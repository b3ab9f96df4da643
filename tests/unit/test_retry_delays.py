"""Helicone-Retry-* delays (heliograph/proxy/retry.py): exponential backoff from the
caller's min/factor/max, and the provider's retry-after when it asks for longer."""

from __future__ import annotations

import email.utils
import time

import pytest

from heliograph.proxy.headers import parse
from heliograph.proxy.retry import NO_RETRY, RetryPolicy, provider_retry_after_ms, retryable


def policy_from(**headers: str) -> RetryPolicy:
    return RetryPolicy.from_options(parse({"helicone-retry-enabled": "true", **headers}))


def test_defaults_are_three_retries_from_one_second_doubling_up_to_ten():
    policy = policy_from()
    assert policy.retries == 3
    assert [policy.delay_s(n, {}) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_min_factor_and_max_from_the_headers():
    policy = policy_from(**{"helicone-retry-num": "5", "helicone-retry-factor": "3",
                            "helicone-retry-min-timeout": "100",
                            "helicone-retry-max-timeout": "2000"})
    assert policy.retries == 5
    assert [policy.delay_s(n, None) for n in (1, 2, 3, 4)] == [0.1, 0.3, 0.9, 2.0]


def test_factor_one_is_a_constant_delay():
    policy = policy_from(**{"helicone-retry-factor": "1", "helicone-retry-min-timeout": "250"})
    assert {policy.delay_s(n, {}) for n in range(1, 6)} == {0.25}


def test_a_max_below_the_min_is_raised_to_the_min():
    policy = policy_from(**{"helicone-retry-min-timeout": "500",
                            "helicone-retry-max-timeout": "100"})
    assert policy.max_ms == 500
    assert policy.delay_s(3, {}) == 0.5


def test_retries_off_unless_enabled():
    assert RetryPolicy.from_options(parse({})) is NO_RETRY
    assert RetryPolicy.from_options(parse({"helicone-retry-enabled": "false",
                                           "helicone-retry-num": "5"})) is NO_RETRY
    assert NO_RETRY.retries == 0


@pytest.mark.parametrize("headers, expected_s", [
    ({"retry-after": "3"}, 3.0),                      # seconds
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "1500"}, 1.5),                # OpenAI's milliseconds
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # -ms wins over seconds
    ({"retry-after": "60"}, 10.0),                    # capped by the caller's max
    ({"retry-after": "0.01"}, 0.1),                   # shorter than the backoff: backoff
    ({"retry-after-ms": "x", "retry-after": "2"}, 2.0),
    ({"retry-after": "-5"}, 0.1),
])
def test_provider_retry_after_wins_when_it_asks_for_longer(headers, expected_s):
    policy = policy_from(**{"helicone-retry-min-timeout": "100"})
    assert policy.delay_s(1, headers) == pytest.approx(expected_s)


@pytest.mark.parametrize("value", ["soon", "tomorrow at noon", "Mon, 99 Foo 2024", "1e"])
def test_an_unreadable_retry_after_is_ignored_not_an_error(value):
    # A provider's garbage header must not turn a retryable 429 into a gateway 500.
    assert provider_retry_after_ms({"retry-after": value}) is None
    assert policy_from().delay_s(1, {"retry-after": value}) == 1.0


def test_retry_after_as_an_http_date():
    in_three_s = email.utils.formatdate(time.time() + 3, usegmt=True)
    assert provider_retry_after_ms({"retry-after": in_three_s}) == pytest.approx(3000, abs=1100)
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert provider_retry_after_ms({"retry-after": past}) == 0
    assert provider_retry_after_ms({}) is None


@pytest.mark.parametrize("status, retried", [
    (429, True), (500, True), (502, True), (503, True), (504, True), (529, True),
    (400, False), (401, False), (403, False), (404, False), (409, False), (422, False),
])
def test_which_statuses_are_retried(status, retried):
    assert retryable(status) is retried
