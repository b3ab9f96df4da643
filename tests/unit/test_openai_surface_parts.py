"""The pure parts of the relayed OpenAI surface: the streaming form reader, the media
prices, OpenAI error bodies made whole, Anthropic-shaped model pages."""

import orjson
import pytest

from heliograph import media_costs
from heliograph.errors import BadRequest, ProviderStatusError
from heliograph.formats.anthropic.models import anthropic_page
from heliograph.formats.openai.multipart import FormSniffer, boundary_of, with_field_value
from heliograph.proxy.routing import upstream_message
from heliograph.proxy.sse_log import CompletionStreamLog

FORM = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nopenai/whisper-1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + b"R" * 1000 + b"\r\n--b--\r\n")


@pytest.mark.parametrize("size", [1, 7, 64, len(FORM)])
def test_form_read_in_any_chunking(size):
    sniffer = FormSniffer(boundary_of("multipart/form-data; boundary=b"))
    for start in range(0, len(FORM), size):
        sniffer.feed(FORM[start:start + size])
    assert sniffer.summary == {"model": "openai/whisper-1", "files": [
        {"name": "file", "bytes": 1000, "filename": "a.wav", "content_type": "audio/wav"}]}


def test_model_field_rewritten_and_bad_forms_refused():
    assert with_field_value(FORM, "model", "openai/whisper-1", "whisper-1") == FORM.replace(
        b"openai/whisper-1", b"whisper-1")
    assert with_field_value(FORM, "model", "other", "x") is None
    assert boundary_of("application/json") is None
    with pytest.raises(BadRequest):
        FormSniffer(b"b").feed(b"not a form at all\r\n\r\n")


def test_media_prices():
    at = 1_760_000_000.0
    speech = media_costs.price("speech", "openai", "tts-1", {"input": "x" * 1000}, None, at)
    assert speech["cost_usd"] == pytest.approx(0.015) and speech["cost_known"]
    whisper = media_costs.price("transcription", "openai", "whisper-1", {},
                                {"usage": {"type": "duration", "seconds": 3600}}, at)
    assert whisper["cost_usd"] == pytest.approx(0.36)
    dalle = media_costs.price("image", "openai", "dall-e-3", {}, {"data": []}, at)
    assert (dalle["cost_usd"], dalle["cost_known"]) == (None, False)
    local = media_costs.price("speech", "ollama", "tts-1", {"input": "x"}, None, at)
    assert local["cost_known"] is False


def _relayed(raw: bytes, status: int) -> dict:
    message = upstream_message(raw, status, "groq")
    return orjson.loads(ProviderStatusError(status, message, raw).body_bytes())


def test_provider_error_bodies_made_whole():
    bare = _relayed(b'{"error": {"message": "slow down"}}', 429)
    assert bare == {"error": {"message": "slow down", "type": "upstream_error",
                              "param": None, "code": "provider_error"}}
    assert _relayed(b'{"message": "gone"}', 404)["error"]["message"] == "gone"
    text = _relayed(b"Bad Gateway", 502)["error"]
    assert text["code"] == "provider_error" and "Bad Gateway" in text["message"]
    whole = b'{"error": {"message": "m", "type": "t", "code": null, "extra": 1}}'
    assert ProviderStatusError(400, "m", whole).body_bytes() == whole


def test_anthropic_pages():
    entries = [{"id": f"m{i}", "created": 0} for i in range(5)]
    first = anthropic_page(entries, [("limit", "2")])
    assert [m["id"] for m in first["data"]] == ["m0", "m1"] and first["has_more"]
    last = anthropic_page(entries, [("limit", "2"), ("after_id", "m2")])
    assert [m["id"] for m in last["data"]] == ["m3", "m4"] and not last["has_more"]
    before = anthropic_page(entries, [("limit", "2"), ("before_id", "m3")])
    assert [m["id"] for m in before["data"]] == ["m1", "m2"] and before["has_more"]
    assert first["data"][0]["created_at"] == "1970-01-01T00:00:00Z"
    for bad in ([("limit", "0")], [("after_id", "nope")]):
        with pytest.raises(BadRequest):
            anthropic_page(entries, bad)


def test_completion_stream_log_strips_only_what_it_added():
    events = (b'data: {"id":"c","model":"m","choices":[{"index":0,"text":"Hi"}],'
              b'"usage":null}\n\n'
              b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1,'
              b'"completion_tokens":1}}\n\ndata: [DONE]\n\n')
    log = CompletionStreamLog(strip_usage=True)
    relayed = log.feed(events[:30]) + log.feed(events[30:]) + log.rest()
    assert b"usage" not in relayed and relayed.endswith(b"data: [DONE]\n\n")
    assert log.done and log.completion()["choices"][0]["text"] == "Hi"
    assert log.completion()["usage"] == {"prompt_tokens": 1, "completion_tokens": 1}
    untouched = CompletionStreamLog(strip_usage=False)
    assert untouched.feed(events) == events


def test_formats_readme_shows_the_field_table():
    from pathlib import Path

    from heliograph.formats.openai.request_fields import markdown_table
    readme = Path(__file__).parents[2] / "heliograph" / "formats" / "README.md"
    assert markdown_table() in readme.read_text()


def test_upload_prefix_spills_to_disk_and_replays_in_order():
    import asyncio

    from heliograph.proxy.upload_prefix import TAIL_BYTES, UploadPrefix

    async def run() -> bytes:
        prefix = UploadPrefix(memory_limit=100)
        pieces = [bytes([65 + i % 26]) * 300_000 for i in range(10)] + [b"model=x;"]
        for piece in pieces:
            await prefix.add(piece)
        assert prefix._spool is not None                      # spilled
        assert TAIL_BYTES <= len(prefix.tail) < TAIL_BYTES + 300_000
        prefix.tail = prefix.tail.replace(b"model=x;", b"model=longer;")
        out = b"".join([chunk async for chunk in prefix.replay()])
        assert prefix.size == len(out)
        return out

    out = asyncio.run(run())
    assert out == b"".join(bytes([65 + i % 26]) * 300_000 for i in range(10)) + \
        b"model=longer;"
