"""The formats/ layout's promises: each format converts its usage through
heliograph.costs.Usage without loss, Anthropic's error vocabulary is one table read both
ways, and the fake upstream stays independent of the gateway's translations."""

import subprocess
import sys

import pytest

from heliograph import costs
from heliograph.errors import UpstreamError
from heliograph.formats.anthropic import usage as anthropic_usage
from heliograph.formats.anthropic.stream_to_openai import StreamTranslator
from heliograph.formats.anthropic.tables import ERROR_STATUSES, ERROR_TYPES
from heliograph.formats.gemini import usage as gemini_usage
from heliograph.formats.openai import usage as openai_usage

ANTHROPIC_USAGE = {"input_tokens": 7, "cache_creation_input_tokens": 5,
                   "cache_read_input_tokens": 11, "output_tokens": 13}


def test_anthropic_usage_round_trips_through_costs_usage():
    usage = anthropic_usage.to_usage(ANTHROPIC_USAGE)
    assert usage == costs.Usage(prompt_tokens=23, completion_tokens=13, cached_tokens=11,
                                cache_write_tokens=5)
    assert anthropic_usage.from_usage(usage) == ANTHROPIC_USAGE
    # The log prices Anthropic's own usage through the same conversion.
    assert costs.usage_from_openai(ANTHROPIC_USAGE) == usage


def test_openai_usage_round_trips_through_costs_usage():
    usage = costs.Usage(prompt_tokens=30, completion_tokens=20, cached_tokens=4,
                        cache_write_tokens=3, reasoning_tokens=9)
    assert openai_usage.to_usage(openai_usage.from_usage(usage)) == usage


def test_gemini_usage_counts_thinking_as_output_and_cache_as_input():
    usage = gemini_usage.to_usage({"promptTokenCount": 10, "toolUsePromptTokenCount": 2,
                                   "cachedContentTokenCount": 4, "candidatesTokenCount": 6,
                                   "thoughtsTokenCount": 3})
    assert usage == costs.Usage(prompt_tokens=12, completion_tokens=9, cached_tokens=4,
                                reasoning_tokens=3)


@pytest.mark.parametrize("kind", sorted(k for k in ERROR_STATUSES if k))
def test_anthropic_error_types_read_both_ways(kind):
    """A mid-stream error event gets the status its type comes with, and that status
    shown to an Anthropic caller names the same type."""
    translator = StreamTranslator(None, False, "anthropic")
    with pytest.raises(UpstreamError) as info:
        translator.feed({"type": "error", "error": {"type": kind, "message": "m"}})
    assert info.value.status == ERROR_STATUSES[kind]
    assert ERROR_TYPES[info.value.status] == kind


def test_fake_upstream_does_not_use_the_gateway_translations():
    # Its own tables are what catch translation bugs; sharing ours would hide them.
    code = ("import sys, heliograph.fake_upstream.app, heliograph.fake_upstream.server; "
            "print(sorted(m for m in sys.modules if m.startswith('heliograph.formats')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
