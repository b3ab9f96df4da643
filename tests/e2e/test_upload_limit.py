"""`[limits] max_upload_mb` bounds multipart uploads, which stream through instead of
being held whole (so `max_body_mb` does not apply to them): an upload over the limit is a
413, logged, whether the client declared its length or sent it chunked."""

import httpx
import openai
import pytest
from servers import ADMIN_KEY, Gateway

LIMIT_MB = 0.5


@pytest.fixture(scope="module")
def small_gateway(upstream, tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("upload"), upstream.url,
                 f"sqlite:///{tmp_path_factory.mktemp('db') / 'h.db'}",
                 limits=f"max_upload_mb = {LIMIT_MB}")
    yield gw
    gw.stop()


def test_declared_upload_over_the_limit_is_a_413(small_gateway):
    client = openai.OpenAI(base_url=small_gateway.url + "/v1", api_key=ADMIN_KEY,
                           max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-1",
                                           file=("big.wav", b"R" * 600_000, "audio/wav"))
    assert caught.value.status_code == 413
    assert "max_upload_mb" in caught.value.body["message"]
    record = small_gateway.record(caught.value.response.headers["helicone-id"])
    assert record["status"] == 413 and record["path"] == "/v1/audio/transcriptions"
    # Under the limit it goes through.
    ok = client.audio.transcriptions.create(model="whisper-1",
                                            file=("ok.wav", b"R" * 400_000, "audio/wav"))
    assert "400000 bytes" in ok.text


def test_chunked_upload_over_the_limit_is_cut_at_the_limit(small_gateway, upstream):
    boundary = "limitboundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
            f'whisper-1\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n').encode()

    def body():   # no Content-Length: the gateway only learns the size as it reads
        yield head
        for _ in range(20):
            yield b"R" * 50_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(small_gateway.url + "/v1/audio/transcriptions", content=body(),
                          headers={"authorization": f"Bearer {ADMIN_KEY}",
                                   "content-type": f"multipart/form-data; boundary={boundary}"},
                          timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    record = small_gateway.record(response.headers["helicone-id"])
    assert record["status"] == 413
