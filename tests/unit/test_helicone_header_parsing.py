"""Helicone-* request headers → RequestOptions (heliograph/proxy/headers.py): every header,
and every bad value a 400 (code invalid_header) before anything reaches a provider."""

from __future__ import annotations

import uuid

import pytest

from heliograph.errors import BadRequest
from heliograph.proxy.headers import (
    DEFAULT_CACHE_TTL_S,
    DEFAULT_FALLBACK_CODES,
    MAX_CACHE_TTL_S,
    RequestOptions,
    parse,
    split_list,
)


def refused(headers: dict[str, str]) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        parse(headers)
    assert info.value.status == 400 and info.value.code == "invalid_header"
    return info.value


def test_no_helicone_header_means_the_defaults():
    assert parse({"content-type": "application/json"}) == RequestOptions()
    opts = parse({})
    assert not opts.retry_enabled and not opts.cache_enabled and opts.stream_usage
    assert opts.fallback_codes == DEFAULT_FALLBACK_CODES == {429, 500, 502, 503, 504, 529}


def test_properties_keep_their_value_and_lowercase_name():
    opts = parse({"helicone-property-workflow": "triage", "helicone-property-env": "a b, c"})
    assert opts.properties == {"workflow": "triage", "env": "a b, c"}


def test_a_property_without_a_name_is_refused():
    assert "needs a name" in refused({"helicone-property-": "x"}).message


def test_request_id_is_normalised_and_one_not_a_uuid_is_replaced():
    request_id = uuid.uuid4()
    assert parse({"helicone-request-id": f" {str(request_id).upper()} "}).request_id == \
        str(request_id)
    # Helicone replaces an id that is not a UUID: the record gets a fresh one.
    opts = parse({"helicone-request-id": "not-a-uuid"})
    assert opts.request_id is None and opts.replaced_request_id == "not-a-uuid"


def test_user_and_session():
    opts = parse({"helicone-user-id": "alice", "helicone-session-id": "s1",
                  "helicone-session-path": "plan/step1", "helicone-session-name": "Planner"})
    assert (opts.user_id, opts.session_id, opts.session_name) == ("alice", "s1", "Planner")
    assert opts.session_path == "/plan/step1"  # a leading slash is added
    assert parse({"helicone-user-id": ""}).user_id is None


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("0", False), ("no", False), ("off", False), ("", False),
])
def test_flags_accept_the_usual_spellings(value, expected):
    opts = parse({"helicone-omit-request": value, "helicone-omit-response": value,
                  "helicone-stream-usage": value})
    assert opts.omit_request is opts.omit_response is opts.stream_usage is expected


@pytest.mark.parametrize("name", ["helicone-omit-request", "helicone-omit-response",
                                  "helicone-stream-usage", "helicone-retry-enabled",
                                  "helicone-cache-enabled"])
def test_a_flag_that_is_neither_true_nor_false_is_refused(name):
    assert name in refused({name: "maybe"}).message


def test_retry_headers():
    opts = parse({"helicone-retry-enabled": "true", "helicone-retry-num": "5",
                  "helicone-retry-factor": "1.5", "helicone-retry-min-timeout": "10",
                  "helicone-retry-max-timeout": "200"})
    assert (opts.retry_enabled, opts.retry_num, opts.retry_factor, opts.retry_min_ms,
            opts.retry_max_ms) == (True, 5, 1.5, 10, 200)


def test_retry_numbers_are_ignored_while_retries_are_off():
    assert parse({"helicone-retry-num": "lots"}).retry_num == 3


@pytest.mark.parametrize("name, value", [
    ("helicone-retry-num", "lots"), ("helicone-retry-num", "2.5"),
    ("helicone-retry-num", "11"), ("helicone-retry-num", "-1"),
    ("helicone-retry-factor", "0.5"), ("helicone-retry-factor", "x"),
    ("helicone-retry-min-timeout", "-1"), ("helicone-retry-max-timeout", "600001"),
])
def test_bad_retry_numbers_are_refused(name, value):
    error = refused({"helicone-retry-enabled": "true", name: value})
    assert name in error.message and value in error.message


def test_fallback_models_and_codes():
    opts = parse({"helicone-fallback-model": 'gpt-4o, "claude-3-5-haiku-latest" ,,',
                  "helicone-fallback-oncodes": "500, 503"})
    assert opts.fallback_models == ["gpt-4o", "claude-3-5-haiku-latest"]
    assert opts.fallback_codes == {500, 503}


@pytest.mark.parametrize("codes", ["abc", "200", "600", "5xx", "429,oops"])
def test_fallback_codes_must_be_http_error_codes(codes):
    assert "Helicone-Fallback-OnCodes" in refused({"helicone-fallback-oncodes": codes}).message


def test_cache_headers():
    opts = parse({"helicone-cache-enabled": "true", "cache-control": "max-age=60",
                  "helicone-cache-bucket-max-size": "3", "helicone-cache-seed": "s1",
                  "helicone-cache-ignore-keys": "user, metadata"})
    assert (opts.cache_enabled, opts.cache_ttl_s, opts.cache_bucket_max, opts.cache_seed) == \
        (True, 60, 3, "s1")
    assert opts.cache_ignore_keys == ["user", "metadata"]


@pytest.mark.parametrize("cache_control, ttl", [
    (None, DEFAULT_CACHE_TTL_S),
    ("no-store", DEFAULT_CACHE_TTL_S),
    ("public, max-age=30", 30),
    ("max-age=30, s-maxage=90", 90),                 # s-maxage wins
    ('max-age="45"', 45),
    (f"max-age={MAX_CACHE_TTL_S * 2}", MAX_CACHE_TTL_S),  # clamped to a year
])
def test_cache_ttl_from_cache_control(cache_control, ttl):
    headers = {"helicone-cache-enabled": "true"}
    if cache_control is not None:
        headers["cache-control"] = cache_control
    assert parse(headers).cache_ttl_s == ttl


@pytest.mark.parametrize("headers", [
    {"cache-control": "max-age=soon"},
    {"cache-control": "max-age=-1"},
    {"helicone-cache-bucket-max-size": "0"},
    {"helicone-cache-bucket-max-size": "21"},
    {"helicone-cache-bucket-max-size": "two"},
])
def test_bad_cache_values_are_refused(headers):
    refused({"helicone-cache-enabled": "true", **headers})


def test_cache_values_are_ignored_while_the_cache_is_off():
    assert parse({"helicone-cache-bucket-max-size": "99"}).cache_bucket_max == 1


def test_ratelimit_policy_is_kept_as_sent_for_the_limiter():
    policy = "100;w=3600;u=request;s=user"
    assert parse({"helicone-ratelimit-policy": policy}).ratelimit_policy == policy
    assert parse({"helicone-ratelimit-policy": ""}).ratelimit_policy is None


@pytest.mark.parametrize("value, items", [
    ("a,b", ["a", "b"]), ("a, b", ["a", "b"]), ('"a","b"', ["a", "b"]),
    (" , ,", []), ("single", ["single"]),
])
def test_split_list(value, items):
    assert split_list(value) == items
