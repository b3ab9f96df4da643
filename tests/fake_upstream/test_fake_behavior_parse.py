import pytest

from heliograph.fake_upstream.behavior import Behavior, BehaviorError, parse


def test_nothing_requested():
    assert parse(None, "gpt-4o") == Behavior()
    assert parse("", None) == Behavior()


@pytest.mark.parametrize("token,expected", [
    ("status-429", {"status": 429}),
    ("delay-250", {"delay_ms": 250}),
    ("stall-100", {"stall_ms": 100}),
    ("chunk-delay-5", {"chunk_delay_ms": 5}),
    ("malformed", {"malformed": True}),
    ("truncated", {"truncated": True}),
    ("reset", {"reset": True}),
    ("fail-then-ok-3", {"fail_then_ok": 3}),
    ("cached-12", {"cached_tokens": 12}),
    ("reasoning-7", {"reasoning_tokens": 7}),
    ("usage-10-20", {"usage": (10, 20)}),
    ("tool-call", {"tool_call": True}),
    ("tool-calls-3", {"tool_calls": 3}),
])
def test_each_token_by_header_and_by_model(token, expected):
    want = Behavior(**expected)
    assert parse(token) == want
    assert parse("fake-" + token) == want
    assert parse(None, f"gpt-4o-mini-fake-{token}") == want
    assert parse(None, f"fake-{token}") == want


def test_combinations():
    b = parse("status-503, delay-20 ,cached-4")
    assert (b.status, b.delay_ms, b.cached_tokens) == (503, 20, 4)
    b = parse(None, "gpt-4o-fake-usage-5-6-fake-reasoning-2-fake-truncated")
    assert (b.usage, b.reasoning_tokens, b.truncated) == ((5, 6), 2, True)


def test_header_wins_over_model():
    assert parse("status-500", "gpt-4o-fake-status-429").status == 500
    b = parse("delay-1", "x-fake-status-429")
    assert (b.status, b.delay_ms) == (429, 1)


def test_model_text_that_is_not_a_token_is_ignored():
    assert parse(None, "gpt-4o-fake-status-4290") == Behavior()
    assert parse(None, "gpt-4o-nofake-status-429") == Behavior()
    assert parse(None, "my-fake-model") == Behavior()
    assert parse(None, "GPT-4O-FAKE-STATUS-502").status == 502


@pytest.mark.parametrize("bad", ["stauts-429", "status-42", "delay", "usage-1", "reset-now"])
def test_unknown_header_token_is_an_error(bad):
    with pytest.raises(BehaviorError):
        parse(bad)
