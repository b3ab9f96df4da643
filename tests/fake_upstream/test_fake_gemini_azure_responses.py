"""The fake's Gemini, Azure OpenAI and Responses API wire formats."""

import json

import openai
import pytest

from .conftest import call

GEMINI = {"x-goog-api-key": "k"}
WEATHER_DECL = {"name": "get_weather", "parameters": {
    "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}


def generate(server, payload, model="gemini-2.0-flash", action="generateContent",
             query="", headers=GEMINI, behavior=None):
    return call(server, f"/v1beta/models/{model}:{action}{query}", payload, auth=None,
                headers=headers, behavior=behavior)


def contents(text="hello world"):
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


# -- Gemini ------------------------------------------------------------------------------

def test_gemini_generate_content(server):
    r = generate(server, {**contents(), "systemInstruction": {"parts": [{"text": "be brief"}]}})
    body = r.json()
    cand = body["candidates"][0]
    assert cand["content"] == {"parts": [{"text": "Echo: hello world"}], "role": "model"}
    assert cand["finishReason"] == "STOP" and body["modelVersion"] == "gemini-2.0-flash"
    assert body["usageMetadata"]["promptTokenCount"] == 10
    assert body["usageMetadata"]["candidatesTokenCount"] == 3


def test_gemini_sse_stream_and_json_array(server):
    r = generate(server, contents("a b"), action="streamGenerateContent", query="?alt=sse")
    events = [json.loads(e[len("data: "):]) for e in r.body.decode().split("\r\n\r\n") if e]
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == \
        "Echo: a b"
    assert [e["candidates"][0].get("finishReason") for e in events] == [None, None, "STOP"]
    assert "candidatesTokenCount" in events[-1]["usageMetadata"]
    array = generate(server, contents("a b"), action="streamGenerateContent").json()
    assert isinstance(array, list) and len(array) == 3


def test_gemini_function_calls_and_responses(server):
    tools = [{"functionDeclarations": [WEATHER_DECL]}]
    r = generate(server, {**contents("weather in Paris"), "tools": tools})
    parts = r.json()["candidates"][0]["content"]["parts"]
    assert parts == [{"functionCall": {"name": "get_weather", "args": {"city": "fake city"}}}]
    history = {"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": "weather in Paris"}]},
        {"role": "model", "parts": parts},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {"result": "sunny"}}}]}]}
    assert generate(server, history).json()["candidates"][0]["content"]["parts"][0]["text"] \
        == "Echo: sunny"
    history["contents"][2]["parts"] *= 2
    r = generate(server, history)
    assert r.status == 400 and "number of function response parts" in r.json()["error"]["message"]


def test_gemini_3_needs_thought_signatures(server):
    tools = [{"functionDeclarations": [WEATHER_DECL]}]
    first = generate(server, {**contents("weather"), "tools": tools}, model="gemini-3-pro-preview")
    parts = first.json()["candidates"][0]["content"]["parts"]
    assert parts[0]["thoughtSignature"]
    turn = {"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": "weather"}]},
        {"role": "model", "parts": [{"functionCall": parts[0]["functionCall"]}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {}}}]}]}
    r = generate(server, turn, model="gemini-3-pro-preview")
    assert r.status == 400 and "thought_signature" in r.json()["error"]["message"]
    turn["contents"][1]["parts"] = parts
    assert generate(server, turn, model="gemini-3-pro-preview").status == 200


def test_gemini_json_mode_safety_and_usage(server):
    schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}
    r = generate(server, {**contents(), "generationConfig": {
        "responseMimeType": "application/json", "responseSchema": schema}})
    assert json.loads(r.json()["candidates"][0]["content"]["parts"][0]["text"]) == {"n": 1}
    blocked = generate(server, contents(), behavior="content-filter").json()["candidates"][0]
    assert blocked["finishReason"] == "SAFETY" and "content" not in blocked
    prompt = generate(server, contents(), behavior="prompt-blocked").json()
    assert prompt["promptFeedback"]["blockReason"] == "SAFETY" and "candidates" not in prompt
    meta = generate(server, contents(), behavior="cached-4,reasoning-6").json()["usageMetadata"]
    assert (meta["cachedContentTokenCount"], meta["thoughtsTokenCount"]) == (4, 6)


def test_gemini_auth_and_errors(server):
    assert generate(server, contents(), headers={}).status == 403
    bad = generate(server, contents(), headers={"x-goog-api-key": "sk-bad"})
    assert bad.status == 400 and "API key not valid" in bad.json()["error"]["message"]
    assert generate(server, contents(), query="?key=k", headers={}).status == 200
    limited = generate(server, contents(), behavior="status-429").json()["error"]
    assert limited["status"] == "RESOURCE_EXHAUSTED"
    assert limited["details"][0]["retryDelay"] == "1s"
    assert generate(server, contents(), action="nope").status == 404


def test_gemini_embeddings(server):
    one = generate(server, {"content": {"parts": [{"text": "alpha"}]}}, model="text-embedding-004",
                   action="embedContent").json()
    batch = generate(server, {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "alpha"}]},
         "outputDimensionality": 4}]}, model="text-embedding-004",
        action="batchEmbedContents").json()
    assert len(one["embedding"]["values"]) == 8
    assert len(batch["embeddings"][0]["values"]) == 4


@pytest.mark.parametrize("payload, action, fragment", [
    ({**contents(), "generationConfig": {"candidateCount": 2**31}}, "generateContent",
     "candidateCount"),
    ({"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 10**9}, "embedContent",
     "outputDimensionality"),
])
def test_gemini_bounds_what_would_only_cost_memory(server, payload, action, fragment):
    # Once made the fake allocate until it was killed (found by fuzzing the gateway).
    refused = generate(server, payload, action=action)
    assert refused.status == 400 and fragment in refused.json()["error"]["message"]
    assert generate(server, contents()).status == 200


# -- Azure OpenAI ---------------------------------------------------------------------------

@pytest.fixture
def azure(server):
    return openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21",
                              max_retries=0)


def test_azure_deployments(azure, server):
    r = azure.chat.completions.create(model="gpt-4o-mini",
                                      messages=[{"role": "user", "content": "hi"}])
    assert r.model == "gpt-4o-mini-2024-07-18" and r.choices[0].message.content == "Echo: hi"
    assert server.requests()[-1]["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    chunks = list(azure.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "hi"}]))
    assert chunks[0].choices == [] and chunks[0].id == ""       # Azure's prompt filter chunk
    assert len(azure.embeddings.create(model="text-embedding-3-small", input="x").data) == 1


def test_azure_auth_and_api_version(server):
    chat = {"messages": [{"role": "user", "content": "x"}]}
    path = "/openai/deployments/gpt-4o/chat/completions"
    assert call(server, path + "?api-version=2024-10-21", chat, auth=None).status == 401
    assert call(server, path, chat, auth=None, headers={"api-key": "k"}).status == 404
    assert call(server, path + "?api-version=2024-10-21", chat, auth=None,
                headers={"api-key": "sk-bad"}).status == 401
    v1 = call(server, "/openai/v1/chat/completions", {**chat, "model": "gpt-4o"}, auth=None,
              headers={"api-key": "k"})
    assert v1.json()["model"] == "gpt-4o-2024-11-20"


# -- Responses API --------------------------------------------------------------------------

def test_responses(client):
    r = client.responses.create(model="gpt-4o-mini", instructions="be brief", input="hi there")
    assert r.output_text == "Echo: hi there" and r.usage.input_tokens == 5 + 5
    events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    cut = client.responses.create(model="gpt-4o-mini", input="one two three",
                                  max_output_tokens=2)
    assert cut.status == "incomplete" and cut.output_text == "Echo: one"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-4o-mini", input=[
            {"type": "function_call_output", "call_id": "nope", "output": "x"}])


def test_gemini_wrong_shape_answers_streams_embeddings_and_errors(server):
    plain = generate(server, contents()).json()
    odd = generate(server, contents(), behavior="wrong-shape").json()
    parts = odd["candidates"][0]["content"]["parts"]
    assert parts[:2] == [5, "no part"] and parts[-1:] == plain["candidates"][0]["content"]["parts"]
    assert odd["candidates"][-1] == "no candidate" and odd["promptFeedback"] == "none"
    assert odd["usageMetadata"]["promptTokenCount"] == [1]
    r = generate(server, contents("a b"), action="streamGenerateContent", query="?alt=sse",
                 behavior="wrong-shape")
    events = [json.loads(e[len("data: "):]) for e in r.body.decode().split("\r\n\r\n") if e]
    assert events[1]["candidates"][0] == "no candidate"
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"]
                   for e in events[:1] + events[2:]) == "Echo: a b"
    embedded = generate(server, {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "alpha"}]}}]},
        model="text-embedding-004", action="batchEmbedContents", behavior="wrong-shape").json()
    assert embedded["embeddings"] == [{"values": [0.5, "x"]}, "no embedding"]
    error = generate(server, contents(), behavior="status-429, wrong-shape").json()["error"]
    assert error["details"] == 5 and error["status"] == ["RESOURCE_EXHAUSTED"]
