"""Rate-limit policies: the grammar, and RateLimiter over real stores."""

import pytest
from state_backends import allowed_across_processes, run

from heliograph.errors import BadRequest, RateLimited
from heliograph.proxy.auth import Principal
from heliograph.proxy.headers import RequestOptions
from heliograph.proxy.ratelimit import MAX_POLICIES, Policy, RateLimiter, parse_policies

PRINCIPAL = Principal("key1", "org1", False)


# -- grammar ------------------------------------------------------------------------------

@pytest.mark.parametrize("header, expected", [
    ("1000;w=3600;u=request;s=user", [Policy(1000, 3600, "request", "user")]),
    ("10;w=60", [Policy(10, 60, "request", None)]),
    ("5;w=60;u=cents;s=Workflow", [Policy(5, 60, "cents", "workflow")]),
    ("7;W=30;U=Tokens", [Policy(7, 30, "tokens", None)]),
    (" 1000;w=3600;s=user , 50 ; w = 60 ; u = cents ",
     [Policy(1000, 3600, "request", "user"), Policy(50, 60, "cents", None)]),
    ("3;w=1", [Policy(3, 1)]),  # shorter than Helicone's 60 s minimum: accepted
    # Helicone's leniency: decimal cents/tokens quotas, plurals, empty parts, spaces.
    ("0.5;w=60;u=cents", [Policy(0.5, 60, "cents", None)]),
    ("2.5;w=60;u=token", [Policy(2.5, 60, "tokens", None)]),
    ("10;w=60;u=requests;", [Policy(10, 60, "request", None)]),
    ("10 ; w=60 ;; s=user ;", [Policy(10, 60, "request", "user")]),
])
def test_good_policies(header, expected):
    parsed = parse_policies(header)
    assert [(p.quota, p.window_s, p.unit, p.segment) for p in parsed] == \
        [(p.quota, p.window_s, p.unit, p.segment) for p in expected]
    assert [p.text for p in parsed] == [part.strip() for part in header.split(",")]


def test_empty_policies_between_commas_are_ignored():
    assert [(p.quota, p.window_s) for p in parse_policies("10;w=60,, 5;w=30 ,")] == \
        [(10, 60), (5, 30)]


def test_the_echo_is_helicones_normalised_form():
    (policy,) = parse_policies(" 10 ;W=60;s=User; ")
    assert policy.echo == "10;w=60;u=request"
    (policy,) = parse_policies("0.5;w=60;u=cents")
    assert policy.echo == "0.5;w=60;u=cents"
    assert policy.describe() == "0.5 cents per 60 s for the organization"
    # Two spellings of one policy share a counter.
    assert parse_policies("10.0;w=60;u=tokens")[0].canonical == \
        parse_policies("10;w=60;u=token")[0].canonical


def test_canonical_and_description():
    (policy,) = parse_policies("5;s=User;w=60")
    assert policy.canonical == "5;w=60;u=request;s=user"
    assert policy.describe() == "5 requests per 60 s per user"
    (policy,) = parse_policies("100;w=3600;u=cents;s=workflow")
    assert policy.describe() == "100 cents per 3600 s per value of property 'workflow'"
    assert parse_policies(None) == []


@pytest.mark.parametrize("header, message", [
    ("", "empty header"),
    ("abc;w=60", "a request quota must be a whole number from 1"),
    ("0;w=60", "a request quota must be a whole number from 1"),
    ("-5;w=60", "a request quota must be a whole number from 1"),
    # Requests are counted whole: 1.5 would silently be a quota of 1.
    ("1.5;w=60", "a request quota must be a whole number from 1"),
    ("0;w=60;u=cents", "the quota must be a number above 0, got '0'"),
    ("-0.5;w=60;u=cents", "the quota must be a number above 0"),
    ("nan;w=60;u=cents", "the quota must be a number above 0"),
    ("inf;w=60;u=tokens", "the quota must be a number above 0"),
    (" ; , ", "empty header"),
    (";w=60", "must start with a quota"),
    ("10", "needs a window"),
    ("10;u=cents", "needs a window"),
    ("10;w=0", "the window w must be a whole number from 1 to 31536000, got '0'"),
    ("10;w=1h", "the window w must be a whole number"),
    ("10;w=99999999", "the window w must be a whole number"),
    ("10;w=60;u=dollars", "unit u='dollars'"),
    ("10;w=60;x=1", "unknown parameter 'x'"),
    ("10;w=60;w=30", "w= given twice"),
    ("10;w=60;s=", "s= needs a value"),
    ("10;w=60;s=a b", "segment s='a b'"),
    ("10;w=60;u", "'u' is not name=value"),
    (",".join(["1;w=60"] * (MAX_POLICIES + 1)), f"at most {MAX_POLICIES} policies"),
])
def test_bad_policies_say_what_is_wrong(header, message):
    with pytest.raises(BadRequest) as bad:
        parse_policies(header)
    assert bad.value.status == 400
    assert bad.value.message.startswith("Helicone-RateLimit-Policy: ")
    assert message in bad.value.message


# -- the limiter over real stores ---------------------------------------------------------

def options(policy):
    return RequestOptions(ratelimit_policy=policy)


def record(user=None, **properties):
    return {"user_id": user, "properties": properties}


def with_limiter(backend, fn):
    async def go():
        limiter = RateLimiter(backend.open())
        try:
            return await fn(limiter)
        finally:
            await limiter.drain()
            await limiter.state.close()
    return run(go())


async def outcomes(limiter, opts, rec, n, principal=PRINCIPAL):
    out = []
    for _ in range(n):
        try:
            await limiter.check(principal, opts, rec)
            out.append(True)
        except RateLimited:
            out.append(False)
    return out


def test_request_policy_per_user(backend):
    opts = options("5;w=60;u=request;s=user")

    async def fn(limiter):
        first = dict(await limiter.check(PRINCIPAL, opts, record("alice")))
        rest = await outcomes(limiter, opts, record("alice"), 4)
        with pytest.raises(RateLimited) as refused:
            await limiter.check(PRINCIPAL, opts, record("alice"))
        bob = await outcomes(limiter, opts, record("bob"), 1)
        other_org = await outcomes(limiter, opts, record("alice"), 1,
                                   Principal("k2", "org2", False))
        return first, rest, refused.value, bob, other_org
    first, rest, refused, bob, other_org = with_limiter(backend, fn)
    assert first == {b"helicone-ratelimit-limit": b"5", b"helicone-ratelimit-remaining": b"4",
                     b"helicone-ratelimit-policy": b"5;w=60;u=request",
                     b"helicone-ratelimit-reset": b"60"}
    assert rest == [True] * 4
    assert refused.status == 429
    assert refused.message.startswith("rate limit exceeded: policy '5;w=60;u=request;s=user'"
                                      " (5 requests per 60 s per user)")
    assert refused.headers["x-helicone-error"] == "rate_limited"
    assert refused.headers["helicone-ratelimit-limit"] == "5"
    assert refused.headers["helicone-ratelimit-remaining"] == "0"
    assert refused.headers["helicone-ratelimit-policy"] == "5;w=60;u=request"
    assert 0 < int(refused.headers["helicone-ratelimit-reset"]) <= 60
    assert refused.headers["retry-after"] == refused.headers["helicone-ratelimit-reset"]
    assert refused.body()["error"]["type"] == "rate_limit_error"
    assert bob == [True] and other_org == [True]


def test_anonymous_requests_share_one_counter_and_properties_segment(backend):
    by_user = options("2;w=60;s=user")
    by_prop = options("1;w=60;s=Workflow")

    async def fn(limiter):
        anonymous = await outcomes(limiter, by_user, record(None), 3)
        props = [await outcomes(limiter, by_prop, record("u", workflow="a"), 2),
                 await outcomes(limiter, by_prop, record("u", Workflow="b"), 1),
                 await outcomes(limiter, by_prop, record("u"), 2)]
        return anonymous, props
    anonymous, props = with_limiter(backend, fn)
    assert anonymous == [True, True, False]
    assert props == [[True, False], [True], [True, False]]


def test_a_refused_request_consumes_no_quota(backend):
    opts = options("10;w=60, 1;w=60;s=user")

    async def fn(limiter):
        result = await outcomes(limiter, opts, record("alice"), 3)
        headers = dict(await limiter.check(PRINCIPAL, opts, record("bob")))
        return result, headers
    result, headers = with_limiter(backend, fn)
    assert result == [True, False, False]
    # alice's refusals did not count against the organization-wide policy; the header
    # reports the most constrained policy (bob's per-user one, now at 0 of 1).
    assert headers[b"helicone-ratelimit-policy"] == b"1;w=60;u=request"
    assert headers[b"helicone-ratelimit-remaining"] == b"0"


def test_cents_policy_stops_a_user_once_cost_crosses_the_quota(backend):
    opts = options("100;w=3600;u=cents;s=user")

    async def fn(limiter):
        steps = []
        for cost in (0.6, None, 0.5):  # 60 cents, unknown, 50 cents
            steps.append(await outcomes(limiter, opts, record("alice"), 1))
            rec = dict(record("alice"), cost_usd=cost)
            limiter.settle(PRINCIPAL, opts, rec)
            await limiter.drain()
        steps.append(await outcomes(limiter, opts, record("alice"), 1))
        steps.append(await outcomes(limiter, opts, record("bob"), 1))
        return steps
    assert with_limiter(backend, fn) == [[True], [True], [True], [False], [True]]


def test_tokens_policy_counts_settled_tokens(backend):
    opts = options("1000;w=60;u=tokens")

    async def fn(limiter):
        await limiter.settle_now(PRINCIPAL, opts, dict(record("a"), total_tokens=999))
        ok = await outcomes(limiter, opts, record("b"), 1)
        await limiter.settle_now(PRINCIPAL, opts, dict(record("b"), total_tokens=1))
        with pytest.raises(RateLimited) as refused:
            await limiter.check(PRINCIPAL, opts, record("c"))
        return ok, refused.value.message
    ok, message = with_limiter(backend, fn)
    assert ok == [True]
    assert "(1000 tokens per 60 s for the organization)" in message


def test_five_per_minute_across_two_worker_processes(backend):
    args = {"organization": "org-" + backend.prefix, "user": "alice",
            "policy": "5;w=60;u=request;s=user"}
    assert allowed_across_processes(backend, "limiter", args) == 5
