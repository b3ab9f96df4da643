"""A translating provider's answer that is JSON of the wrong shape (an Anthropic message or
a Gemini response with blocks, parts and candidates that are no objects, a text that is a
number, a list stop reason, a token count that is a list…: the fake upstream's
`wrong-shape`); an OpenAI answer whose model is a list; Gemini embeddings and error
bodies of the wrong shape.

Through the real gateway with the official openai SDK (chat and Responses callers) and
plain HTTP (Anthropic callers, whose native answer may carry odd members the Anthropic SDK
would trip over). What a caller expects: the answer as far as it can be read, a 200, never
a 500 or a cut stream; and a record logged with that status. Embeddings cannot be read in
part: an OpenAI-shaped 502 `upstream_malformed`, logged. (A 200 whose body is JSON but no
object was already a 502 `upstream_malformed` on every route, as one that is not JSON.)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import openai
import pytest
from servers import ADMIN_KEY

CLAUDE, GEMINI = "claude-3-5-haiku-latest", "gemini-2.0-flash"
WRONG_SHAPE = {"x-fake-behavior": "wrong-shape"}
PROMPT = "one two three"


def _messages(gateway, body: dict, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """POST /v1/messages as an Anthropic caller would (x-api-key, anthropic-version)."""
    req = urllib.request.Request(gateway.url + "/v1/messages", data=json.dumps(body).encode(),
                                 method="POST", headers={
                                     "x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01",
                                     "content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _openai_post(gateway, path: str, body: dict) -> tuple[int, dict, bytes]:
    """POST an OpenAI route with the admin key, asking the fake for the wrong shape."""
    req = urllib.request.Request(gateway.url + path, data=json.dumps(body).encode(),
                                 method="POST", headers={
                                     "Authorization": f"Bearer {ADMIN_KEY}",
                                     "Content-Type": "application/json", **WRONG_SHAPE})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, dict(resp.headers), resp.read()


def _logged(gateway, headers, status: int) -> dict:
    rec = gateway.record(headers.get("helicone-id") or headers["Helicone-Id"])
    assert rec["status"] == status, rec
    return rec


def test_an_openai_answer_whose_model_is_a_list_is_relayed_and_logged(gateway):
    """The OpenAI pass-through relays the answer as it came; the record names the model
    routed to (a list as the model used failed the answer's headers, the metrics and the
    store: a 500, and no record)."""
    status, headers, raw = _openai_post(gateway, "/v1/chat/completions", {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]})
    answer = json.loads(raw)
    assert status == 200 and answer["model"] == ["not a string"]
    rec = _logged(gateway, headers, 200)
    assert rec["error"] is None and rec["model_used"] == "gpt-4o-mini"


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_an_answer_of_the_wrong_shape_reaches_an_openai_caller(gateway, openai_client, model):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], extra_headers=WRONG_SHAPE)
    assert raw.http_response.status_code == 200
    answer = raw.parse()
    assert answer.choices[0].message.content == f"Echo: {PROMPT}"
    assert not answer.choices[0].message.tool_calls     # none had a usable name
    assert answer.choices[0].finish_reason == "stop"
    assert isinstance(answer.model, str) and isinstance(answer.id, str)
    rec = _logged(gateway, raw.headers, 200)
    assert rec["error"] is None and rec["completion_tokens"] > 0
    assert rec["response"]["choices"][0]["message"]["content"] == f"Echo: {PROMPT}"


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_an_answer_of_the_wrong_shape_reaches_an_anthropic_caller(gateway, model):
    status, headers, raw = _messages(gateway, {
        "model": model, "max_tokens": 50,
        "messages": [{"role": "user", "content": PROMPT}]}, WRONG_SHAPE)
    assert status == 200, raw
    message = json.loads(raw)
    texts = [b["text"] for b in message["content"]
             if isinstance(b, dict) and b.get("type") == "text" and isinstance(b["text"], str)]
    assert texts == [f"Echo: {PROMPT}"]
    if model == CLAUDE:
        assert message["content"][0] == "no block"      # Anthropic's own, as it came
    rec = _logged(gateway, headers, 200)
    assert rec["error"] is None and rec["completion_tokens"] > 0


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_an_answer_of_the_wrong_shape_reaches_a_responses_caller(gateway, openai_client,
                                                                 model):
    raw = openai_client.responses.with_raw_response.create(
        model=model, input=PROMPT, extra_headers=WRONG_SHAPE)
    assert raw.http_response.status_code == 200
    response = raw.parse()
    assert response.status == "completed"
    assert response.output_text == f"Echo: {PROMPT}"
    rec = _logged(gateway, raw.headers, 200)
    assert rec["error"] is None and rec["completion_tokens"] > 0


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_an_event_of_the_wrong_shape_does_not_cut_an_openai_stream(gateway, openai_client,
                                                                   model):
    """Gemini: a response whose candidates and parts are of the wrong types (it cut the
    stream). Claude: besides the odd deltas, a tool_use block whose name is a list and id
    a number, which no caller could run or answer: left out, as from a whole answer."""
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True}, extra_headers=WRONG_SHAPE)
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Echo: {PROMPT}"
    assert not [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices
                and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    rec = _logged(gateway, raw.headers, 200)
    assert rec["error"] is None
    assert rec["response"]["choices"][0]["message"]["content"] == text


def test_a_gemini_event_of_the_wrong_shape_does_not_cut_an_anthropic_stream(gateway):
    status, headers, raw = _messages(gateway, {
        "model": GEMINI, "max_tokens": 50, "stream": True,
        "messages": [{"role": "user", "content": PROMPT}]}, WRONG_SHAPE)
    assert status == 200
    assert b"event: message_stop" in raw and b"event: error" not in raw
    rec = _logged(gateway, headers, 200)
    assert rec["error"] is None and PROMPT in json.dumps(rec["response"])


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_an_event_of_the_wrong_shape_does_not_cut_a_responses_stream(gateway, openai_client,
                                                                     model):
    raw = openai_client.responses.with_raw_response.create(
        model=model, input=PROMPT, stream=True, extra_headers=WRONG_SHAPE)
    events = list(raw.parse())
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == f"Echo: {PROMPT}"
    # Claude's tool_use block of no usable name is no function call.
    assert [item.type for item in events[-1].response.output] == ["message"]
    rec = _logged(gateway, raw.headers, 200)
    assert rec["error"] is None


def test_a_completions_event_of_the_wrong_shape_is_relayed_and_logged(gateway):
    """A legacy completions stream (the OpenAI pass-through) with an event whose choices
    have a list or string index, a text that is a number, a list model: relayed as it
    came, and the log reads the rest (the list index cut the stream with a 500; a string
    index, sorted among the integers, would fail the log once the stream had ended)."""
    status, headers, raw = _openai_post(gateway, "/v1/completions", {
        "model": "gpt-3.5-turbo-instruct", "prompt": PROMPT, "stream": True})
    assert status == 200 and b'"index":[1]' in raw
    assert raw.rstrip().endswith(b"data: [DONE]")
    rec = _logged(gateway, headers, 200)
    assert rec["error"] is None and rec["model_used"] == "gpt-3.5-turbo-instruct"
    assert rec["response"]["choices"] == [{"index": 0, "text": f"Completed after {PROMPT}",
                                           "finish_reason": "stop"}]


def test_a_responses_event_of_the_wrong_shape_is_relayed_and_logged(gateway):
    """OpenAI's own Responses stream (relayed, not translated) with an event whose type
    is a list and whose response names a list model, and a text delta that is a list:
    relayed as they came, the stream ends and is logged under the model answered (the
    list type cut the stream with a 500)."""
    status, headers, raw = _openai_post(gateway, "/v1/responses", {
        "model": "gpt-4o-mini", "input": PROMPT, "stream": True})
    assert status == 200 and b'"model":["not a string"]' in raw
    assert b"event: response.completed" in raw
    rec = _logged(gateway, headers, 200)
    assert rec["error"] is None and rec["model_used"] == "gpt-4o-mini"
    assert rec["completion_tokens"] > 0


def test_gemini_embeddings_of_the_wrong_shape_are_a_502(gateway, openai_client):
    """A vector holding a string, an embedding that is no object: unlike a chat answer
    none of it can be passed on (a value left out or one vector dropped is silently wrong
    data), so the caller is told the provider's answer is malformed; it was a 500."""
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.embeddings.create(model="gemini-embedding-001", input=["one", "two"],
                                        extra_headers=WRONG_SHAPE)
    assert info.value.status_code == 502
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "upstream_malformed", error
    rec = _logged(gateway, info.value.response.headers, 502)
    assert "embeddings" in rec["error"]


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_an_error_of_the_wrong_shape_keeps_its_status_and_openai_shape(gateway,
                                                                       openai_client, model):
    """Anthropic's error type a list, Gemini's details a number and status a list: the
    caller gets the 429 with an OpenAI error whose type is a string (Gemini's was a 500,
    Anthropic's type was passed on as a list)."""
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}],
            extra_headers={"x-fake-behavior": "status-429, wrong-shape"})
    error = info.value.body
    assert isinstance(error, dict) and isinstance(error["type"], str), error
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] is None or isinstance(error["code"], str)
    _logged(gateway, info.value.response.headers, 429)


def test_the_record_of_an_answer_of_the_wrong_shape_opens_in_the_dashboard(gateway):
    """A logged OpenAI answer whose message is a string and whose choices hold a string
    (logged here through Helicone's manual logger, as a caller's own call): the record
    was stored, but its dashboard page was a 500. It shows what could be read."""
    import http.cookiejar
    import re

    post = urllib.request.Request(gateway.url + "/oai/v1/log", data=json.dumps({
        "providerRequest": {"url": "https://api.openai.com/v1/chat/completions", "meta": {},
                            "json": {"model": "gpt-4o-mini",
                                     "messages": [{"role": "user", "content": PROMPT}]}},
        "providerResponse": {"status": 200, "headers": {}, "json": {
            "model": "gpt-4o-mini", "usage": "none",
            "choices": [{"index": 0, "message": "not an object"}, "no choice"]}}}).encode(),
        method="POST", headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                "Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=30) as resp:
        record_id = json.load(resp)["id"]
    _logged(gateway, {"helicone-id": record_id}, 200)
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(gateway.url + "/dashboard/login", timeout=30) as resp:
        form = resp.read().decode()
    fields = {name: re.search(rf'name="{name}" value="([^"]*)"', form).group(1)
              for name in ("login_token", "next")}
    with browser.open(gateway.url + "/dashboard/login", timeout=30, data=urllib.parse.urlencode(
            {"key": ADMIN_KEY, **fields}).encode()) as resp:
        assert resp.status == 200       # the 303 to the dashboard, followed
    with browser.open(f"{gateway.url}/dashboard/requests/{record_id}", timeout=30) as resp:
        assert resp.status == 200
        page = resp.read().decode()
    assert PROMPT in page and "not an object" in page    # the prompt; the raw answer


def test_an_anthropic_answer_that_is_another_kind_of_object_is_a_502(gateway, openai_client):
    """A 200 from the Anthropic provider whose JSON object is no message (an error object
    a proxy in between sent): a 502 upstream_malformed for the OpenAI caller, logged as
    such (it was handed on as if it were an OpenAI completion: a 200 with no choices)."""
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client.chat.completions.create(
            model=CLAUDE, messages=[{"role": "user", "content": PROMPT}],
            extra_headers={"x-fake-behavior": "foreign-object"})
    error = caught.value
    assert error.status_code == 502
    assert error.body["code"] == "upstream_malformed", error.body
    assert "not an Anthropic message" in error.body["message"]
    rec = _logged(gateway, dict(error.response.headers), 502)
    assert rec["error"]


def test_an_anthropic_caller_gets_a_502_for_another_kind_of_object(gateway):
    status, _headers, raw = _messages(gateway, {
        "model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": PROMPT}]},
        {"x-fake-behavior": "foreign-object"})
    assert status == 502, raw
    assert b"not an Anthropic message" in raw
