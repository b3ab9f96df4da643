"""The provider operations table: each pipeline operation names real Provider methods,
and only chat and Responses have a streamed variant. The Responses API (and its
compaction) goes through chat unless an adapter speaks it, so the base Provider says it
cannot chat."""

from __future__ import annotations

import asyncio

import pytest

from heliograph.config import ProviderSettings
from heliograph.providers.base import (
    CHAT,
    COUNT_TOKENS,
    EMBEDDINGS,
    RESPONSES,
    RESPONSES_COMPACT,
    Call,
    Provider,
    Unsupported,
)
from heliograph.providers.http import HttpClient


@pytest.fixture
def bare_provider():
    """The base Provider: every operation unsupported, each saying which."""
    return Provider(ProviderSettings(name="bare", type="openai", base_url="http://x"), "k",
                    HttpClient(1, 1))


@pytest.mark.parametrize("operation,message", [
    (CHAT, "does not support chat completions"),
    (EMBEDDINGS, "does not support embeddings"),
    (RESPONSES, "does not support chat completions"),
    (RESPONSES_COMPACT, "does not support chat completions"),
    (COUNT_TOKENS, "cannot count tokens"),
])
def test_send_calls_the_operations_own_method(bare_provider, operation, message):
    with pytest.raises(Unsupported, match=message):
        asyncio.run(operation.send(bare_provider, Call({"model": "m", "input": "x"}, None)))


@pytest.mark.parametrize("operation,message", [
    (CHAT, "does not support streaming"),
    (RESPONSES, "does not support streaming"),
])
def test_open_stream_calls_the_operations_stream_method(bare_provider, operation, message):
    async def open_it():
        async with operation.open_stream(bare_provider, Call({"model": "m", "input": "x"}, None)):
            pass  # pragma: no cover

    with pytest.raises(Unsupported, match=message):
        asyncio.run(open_it())


def test_only_chat_and_responses_stream():
    assert CHAT.open_stream is not None and RESPONSES.open_stream is not None
    assert EMBEDDINGS.open_stream is None and COUNT_TOKENS.open_stream is None
    assert RESPONSES_COMPACT.open_stream is None
