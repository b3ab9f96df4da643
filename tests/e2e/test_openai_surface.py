"""The rest of OpenAI's API through the gateway with the official `openai` SDK: legacy
completions (streamed too), moderations, images, audio, files and batches are relayed to
OpenAI-compatible providers, logged and priced where genai-prices has the price; other
providers get a clear 400. Also GET /v1/models/{id}."""

import io

import httpx
import openai
import pytest
from servers import ADMIN_KEY

# genai-prices' list prices (USD per unit) the records are checked against.
INSTRUCT_IN, INSTRUCT_OUT = 1.5e-6, 2e-6            # gpt-3.5-turbo-instruct, per token
TTS1_PER_CHAR = 15e-6                               # tts-1
WHISPER_PER_SECOND = 0.36 / 3600                    # whisper-1
IMAGE1_TEXT_IN, IMAGE1_IMAGE_IN, IMAGE1_OUT = 5e-6, 10e-6, 40e-6   # gpt-image-1


def test_completion_is_relayed_logged_and_priced(gateway, openai_client):
    raw = openai_client.completions.with_raw_response.create(
        model="gpt-3.5-turbo-instruct", prompt="Say something kind",
        extra_headers={"Helicone-Property-Feature": "legacy"})
    completion = raw.parse()
    assert completion.choices[0].text.startswith("Completed after Say")
    record = gateway.record(raw.headers["helicone-id"])
    assert (record["path"], record["status"], record["provider"]) == (
        "/v1/completions", 200, "openai")
    usage = completion.usage
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        usage.prompt_tokens, usage.completion_tokens)
    assert record["cost_known"] is True
    assert record["cost_usd"] == pytest.approx(
        usage.prompt_tokens * INSTRUCT_IN + usage.completion_tokens * INSTRUCT_OUT)
    assert record["properties"] == {"feature": "legacy"}
    assert record["response"]["choices"][0]["text"] == completion.choices[0].text


def test_streamed_completion_keeps_the_callers_stream_and_logs_its_usage(gateway,
                                                                         openai_client):
    with openai_client.completions.with_streaming_response.create(
            model="gpt-3.5-turbo-instruct", prompt="one two three", stream=True) as raw:
        chunks = list(raw.parse())
        request_id = raw.headers["helicone-id"]
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Completed after one two three"
    # The gateway asked for usage itself: the caller, who did not, sees none.
    assert all(c.usage is None and c.choices for c in chunks)
    record = gateway.record(request_id)
    assert record["status"] == 200 and record["ttft_ms"] is not None
    assert record["response"]["choices"][0]["text"] == text
    assert record["prompt_tokens"] == 3 and record["completion_tokens"] == 5
    assert record["cost_usd"] == pytest.approx(3 * INSTRUCT_IN + 5 * INSTRUCT_OUT)


def test_a_stream_cut_short_ends_with_an_error_event_and_is_logged(gateway, openai_client):
    with openai_client.completions.with_streaming_response.create(
            model="gpt-3.5-turbo-instruct", prompt="one two three", stream=True,
            extra_headers={"x-fake-behavior": "truncated"}) as raw:
        request_id = raw.headers["helicone-id"]
        with pytest.raises(openai.APIError) as caught:
            list(raw.parse())
    # The provider dropped the connection mid-stream: the caller is told in-band.
    assert "truncated" in str(caught.value)
    record = gateway.record(request_id)
    assert record["status"] == 502 and "truncated" in record["error"]
    assert record["attempts"][-1]["status"] == 502
    assert record["response"]["choices"][0]["text"] == "Completed after"


def test_moderation_defaults_its_model_and_costs_nothing(gateway, openai_client):
    raw = openai_client.moderations.with_raw_response.create(input="a forbidden-topic")
    assert raw.parse().results[0].flagged is True
    record = gateway.record(raw.headers["helicone-id"])
    assert record["model"] == "omni-moderation-latest" and record["provider"] == "openai"
    assert (record["cost_usd"], record["cost_known"]) == (0.0, True)


def test_images_priced_by_tokens_or_unknown(gateway, openai_client):
    raw = openai_client.images.with_raw_response.generate(model="dall-e-3", prompt="a fox")
    assert raw.parse().data[0].url.startswith("https://")
    record = gateway.record(raw.headers["helicone-id"])
    # genai-prices has no per-image price for DALL·E: unknown, never a silent 0.
    assert (record["status"], record["cost_usd"], record["cost_known"]) == (200, None, False)

    raw = openai_client.images.with_raw_response.generate(model="gpt-image-1",
                                                          prompt="a red fox")
    usage = raw.parse().usage
    record = gateway.record(raw.headers["helicone-id"])
    text_in = usage.input_tokens_details.text_tokens
    image_in = usage.input_tokens_details.image_tokens
    assert record["cost_known"] is True
    assert record["cost_usd"] == pytest.approx(text_in * IMAGE1_TEXT_IN
                                               + image_in * IMAGE1_IMAGE_IN
                                               + usage.output_tokens * IMAGE1_OUT)


def test_image_edit_upload_is_streamed_with_the_model_renamed(gateway, upstream,
                                                              openai_client):
    picture = io.BytesIO(b"\x89PNG" + b"x" * 2_000_000)   # larger than max_body_mb (1)
    picture.name = "fox.png"
    raw = openai_client.images.with_raw_response.edit(
        model="openai/gpt-image-1", image=picture, prompt="add a hat")
    assert raw.parse().data[0].b64_json
    sent = [r for r in upstream.received() if r["path"] == "/v1/images/edits"][-1]
    assert b'name="model"\r\n\r\ngpt-image-1\r\n' in _bytes(sent["body"])
    record = gateway.record(raw.headers["helicone-id"])
    assert record["model"] == "openai/gpt-image-1" and record["model_used"] == "gpt-image-1"
    assert record["request"]["prompt"] == "add a hat"
    [described] = record["request"]["files"]
    assert (described["name"], described["filename"], described["bytes"]) == (
        "image", "fox.png", 2_000_004)
    assert record["cost_known"] is True


def _bytes(body) -> bytes:
    return body.encode("utf-8", "surrogateescape") if isinstance(body, str) else b""


def test_speech_bytes_are_relayed_and_priced_by_character(gateway, openai_client):
    words = "Hello from the gateway"
    raw = openai_client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy",
                                                              input=words)
    audio = raw.content
    assert len(audio) == 64 * len(words) and raw.headers["content-type"] == "audio/mpeg"
    record = gateway.record(raw.headers["helicone-id"])
    assert record["response"] == {"content_type": "audio/mpeg", "bytes": len(audio)}
    assert record["cost_usd"] == pytest.approx(len(words) * TTS1_PER_CHAR)


def test_transcription_priced_by_audio_seconds(gateway, openai_client):
    raw = openai_client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("talk.wav", b"R" * 8000, "audio/wav"))
    assert raw.parse().text == "Fake transcript of 8000 bytes of audio."
    record = gateway.record(raw.headers["helicone-id"])
    assert record["path"] == "/v1/audio/transcriptions"
    assert record["cost_usd"] == pytest.approx(2 * WHISPER_PER_SECOND)
    text = openai_client.audio.translations.create(
        model="whisper-1", file=("talk.wav", b"R" * 100, "audio/wav"), response_format="text")
    assert "100 bytes" in text


def test_files_and_batches_pass_through_and_are_logged(gateway, openai_client):
    created = openai_client.files.with_raw_response.create(
        file=("requests.jsonl", b'{"custom_id": "1"}\n', "application/jsonl"),
        purpose="batch")
    uploaded = created.parse()
    assert uploaded.bytes == 19 and uploaded.purpose == "batch"
    record = gateway.record(created.headers["helicone-id"])
    assert (record["path"], record["provider"], record["model"]) == ("/v1/files", "openai",
                                                                     None)
    assert (record["cost_usd"], record["cost_known"]) == (0.0, True)   # files bill nothing
    assert openai_client.files.retrieve(uploaded.id).id == uploaded.id
    assert uploaded.id in [f.id for f in openai_client.files.list(purpose="batch")]
    assert openai_client.files.content(uploaded.id).read() == b'{"custom_id": "1"}\n'
    batch = openai_client.batches.create(input_file_id=uploaded.id,
                                         endpoint="/v1/chat/completions",
                                         completion_window="24h")
    assert openai_client.batches.retrieve(batch.id).status == "validating"
    assert batch.id in [b.id for b in openai_client.batches.list()]
    assert openai_client.batches.cancel(batch.id).status == "cancelling"
    assert openai_client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.files.retrieve(uploaded.id)
    record = gateway.record(missing.value.response.headers["helicone-id"])
    assert record["status"] == 404 and "No such file" in record["error"]


@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest", "gemini-2.0-flash"])
def test_providers_that_are_not_openai_compatible_get_a_clear_400(gateway, openai_client,
                                                                  model):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(model=model, prompt="hi")
    error = caught.value.body
    assert "only to OpenAI-compatible providers" in error["message"]
    assert error["type"] == "invalid_request_error"
    record = gateway.record(caught.value.response.headers["helicone-id"])
    assert record["status"] == 400 and record["path"] == "/v1/completions"


def test_provider_errors_keep_the_openai_shape(gateway, openai_client):
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x",
                                         extra_headers={"x-fake-behavior": "status-429"})
    assert caught.value.body["type"] and caught.value.body["code"]


def test_bad_requests_are_clear(gateway, openai_client):
    with pytest.raises(openai.BadRequestError) as no_model:
        openai_client.audio.speech.create(model="", voice="alloy", input="x")
    assert "model" in no_model.value.body["message"]
    with pytest.raises(openai.BadRequestError) as not_multipart:
        openai_client.post("/audio/transcriptions", body={"model": "whisper-1"},
                           cast_to=object)
    assert "multipart/form-data" in not_multipart.value.body["message"]


def test_get_one_model(gateway, openai_client):
    assert openai_client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    prefixed = openai_client.models.retrieve("anthropic/claude-3-5-haiku-20241022")
    assert prefixed.id == "anthropic/claude-3-5-haiku-20241022"
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.models.retrieve("no-such-model")
    assert caught.value.body["code"] == "model_not_found"


def test_anthropic_sdk_lists_models_in_its_own_shape(gateway):
    import anthropic
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    first = client.models.list(limit=2)
    assert len(first.data) == 2 and first.has_more is True
    assert first.data[0].type == "model"
    everything = [m.id for m in client.models.list(limit=1000)]
    assert "claude-3-5-haiku-20241022" in everything and "gpt-4o-mini" in everything
    after = client.models.list(limit=2, after_id=first.last_id)
    assert after.data[0].id == everything[2]
    assert client.models.retrieve("claude-3-5-haiku-20241022").type == "model"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.models.list(limit=0)
    assert bad.value.body["type"] == "error"


def _form(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, str]:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename else "")
        out += f"--fb\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + b"--fb--\r\n", "multipart/form-data; boundary=fb"


def test_a_form_with_its_model_after_the_file(gateway, upstream):
    """openai-node sends the file first: the gateway holds it until the model is read
    (beyond max_body_mb, 1 MB here, in a temporary file), then relays it all."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    for size in (4000, 1_500_000):
        form, content_type = _form(("file", "a.wav", b"R" * size),
                                   ("model", None, b"openai/whisper-1"))
        answer = httpx.post(gateway.url + "/v1/audio/transcriptions", content=form,
                            headers=headers | {"content-type": content_type}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert f"{size} bytes" in answer.json()["text"]
        sent = [r for r in upstream.received()
                if r["path"] == "/v1/audio/transcriptions"][-1]["body"]
        assert sent.endswith('name="model"\r\n\r\nwhisper-1\r\n--fb--\r\n')


def test_served_without_v1_too(gateway):
    answer = httpx.post(gateway.url + "/moderations", json={"input": "hello"},
                        headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["results"][0]["flagged"] is False
    assert gateway.record(answer.headers["helicone-id"])["path"] == "/moderations"
