"""Gemini API wire format (generateContent, streamGenerateContent, embeddings): requests
into an `Ask`, the `Answer` into GenerateContentResponse objects (no I/O here).

Validation mirrors the Gemini rules translation bugs would break: roles are user/model,
a function-response turn answers every function call of the turn before it, and on
Gemini 3 models a replayed function call must carry its thought signature.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .behavior import Behavior
from .conversation import (
    Answer,
    Ask,
    InvalidRequest,
    Tool,
    Turn,
    answer,
    compact_json,
    new_id,
    split_words,
    words,
)
from .openai_format import embedding_vector

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP",
          "content_filter": "SAFETY"}
SAFETY_RATINGS = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                   "blocked": True}]
SIGNATURE_REQUIRED = ("gemini-3",)


def error_body(status: int, message: str | None = None,
               retry_delay: str | None = None) -> dict[str, Any]:
    name = STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    message = message or {
        429: "Resource has been exhausted (e.g. check quota).",
        401: "Request had invalid authentication credentials.",
        404: "models/fake is not found for API version v1beta.",
    }.get(status, f"{name.replace('_', ' ').capitalize()} (fake).")
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if retry_delay is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                             "retryDelay": retry_delay}]
    return {"error": error}


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schemas spell types in capitals ("OBJECT")."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _check_inline(part: dict, where: str) -> None:
    data = part["inlineData"]
    if not isinstance(data, dict) or not data.get("mimeType"):
        raise InvalidRequest(f"{where}.inline_data.mime_type: required")
    try:
        base64.b64decode(data.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequest(f"{where}.inline_data.data: Base64 decoding failed") from None


def _function_response_text(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("result"), str) \
            and len(response) == 1:
        return response["result"]
    return compact_json(response)


def _turns(body: dict, model: str) -> list[Turn]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified")
    turns: list[Turn] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict):
        turns.append(Turn("system", [" ".join(p.get("text", "") for p in system.get("parts")
                                              or () if isinstance(p, dict))]))
    calls_before = 0
    for i, content in enumerate(contents):
        role = content.get("role") or "user" if isinstance(content, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise InvalidRequest(f"* GenerateContentRequest.contents[{i}].role: Please use a "
                                 "valid role: user, model.")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest(f"* GenerateContentRequest.contents[{i}].parts: contents.parts "
                                 "must not be empty.")
        texts, images, results, calls = [], 0, [], []
        for j, part in enumerate(parts):
            where = f"* GenerateContentRequest.contents[{i}].parts[{j}]"
            if "text" in part and not part.get("thought"):
                texts.append(str(part["text"]))
            elif "inlineData" in part:
                _check_inline(part, where)
                images += 1
            elif "fileData" in part:
                if not (part["fileData"] or {}).get("fileUri"):
                    raise InvalidRequest(f"{where}.file_data.file_uri: required")
                images += 1
            elif "functionResponse" in part:
                results.append(_function_response_text(part["functionResponse"].get("response")))
            elif "functionCall" in part:
                calls.append(part)
        if results and len(results) != calls_before:
            raise InvalidRequest("Please ensure that the number of function response parts is "
                                 "equal to the number of function call parts of the function "
                                 "call turn.")
        if calls and model.startswith(SIGNATURE_REQUIRED) and "thoughtSignature" not in calls[0]:
            raise InvalidRequest(f"Function call is missing a thought_signature in functionCall "
                                 f"parts. This is required for tools to work correctly "
                                 f"(contents[{i}].parts[0]).")
        calls_before = len(calls) if role == "model" else 0
        if results:
            turns.append(Turn("tool", tool_results=results))
        if texts or images or not results:
            turns.append(Turn("user" if role == "user" else "assistant", texts, images))
    return turns


def parse(body: Any, model: str) -> Ask:
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received.")
    config = body.get("generationConfig") or {}
    temperature = config.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float))
                                        and 0 <= temperature <= 2):
        raise InvalidRequest("* GenerateContentRequest.generation_config.temperature: "
                             "must be between 0 and 2")
    tools = []
    for group in body.get("tools") or ():
        for decl in (group or {}).get("functionDeclarations") or ():
            schema = decl.get("parametersJsonSchema") or _lower_types(decl.get("parameters"))
            tools.append(Tool(str(decl.get("name")), schema or {}))
    ask = Ask(model, _turns(body, model), tools, stop=list(config.get("stopSequences") or ()),
              max_tokens=config.get("maxOutputTokens"))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode, allowed = calling.get("mode"), calling.get("allowedFunctionNames") or []
    if mode == "NONE":
        ask.tool_choice = "none"
    elif mode == "ANY":
        if len(allowed) == 1:
            ask.forced_tool = allowed[0]
        else:
            ask.tool_choice = "required"
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or _lower_types(config.get("responseSchema"))
        if schema:
            ask.json_schema = schema
        else:
            ask.json_object = True
    return ask


def usage_metadata(a: Answer, final: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"promptTokenCount": a.prompt_tokens}
    if final:
        meta["candidatesTokenCount"] = a.completion_tokens - a.reasoning_tokens
        meta["totalTokenCount"] = a.total_tokens
    else:
        meta["totalTokenCount"] = a.prompt_tokens
    details = [{"modality": "TEXT", "tokenCount": a.prompt_tokens - a.image_tokens}]
    if a.image_tokens:
        details.append({"modality": "IMAGE", "tokenCount": a.image_tokens})
    meta["promptTokensDetails"] = details
    if a.cached_tokens:
        meta["cachedContentTokenCount"] = a.cached_tokens
    if a.reasoning_tokens and final:
        meta["thoughtsTokenCount"] = a.reasoning_tokens
    return meta


# Gemini's own bounds; beyond them a fake answer would only cost memory.
MAX_CANDIDATES = 8
MAX_DIMENSIONS = 3072


def _bounded(value: Any, field: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise InvalidRequest(f"* {field}: must be an integer from 1 "
                             f"to {high}")
    return value


class GenerateReply:
    def __init__(self, body: dict, model: str, b: Behavior):
        self.model = model
        self.id = new_id("", 22)
        self.blocked = b.prompt_blocked
        self.answer = answer(parse(body, model), b)
        config = body.get("generationConfig") if isinstance(body, dict) else None
        self.candidates = _bounded(
            (config if isinstance(config, dict) else {}).get("candidateCount") or 1,
            "generationConfig.candidateCount", MAX_CANDIDATES)

    @property
    def total_tokens(self) -> int:
        return self.answer.total_tokens

    def _parts(self) -> list[dict[str, Any]]:
        a = self.answer
        if a.tool_calls:
            parts: list[dict[str, Any]] = [{"functionCall": {"name": c.name, "args": orjson.loads(c.arguments)}}
                     for c in a.tool_calls]
            if self.model.startswith(("gemini-2.5", *SIGNATURE_REQUIRED)):
                parts[0]["thoughtSignature"] = base64.b64encode(
                    f"fake-signature {a.tool_calls[0].name}".encode()).decode()
            return parts
        return [{"text": a.text}] if a.text is not None else []

    def _candidate(self, index: int, parts: list, finish: str | None) -> dict[str, Any]:
        cand: dict[str, Any] = {}
        if parts:
            cand["content"] = {"parts": parts, "role": "model"}
        if finish is not None:
            cand["finishReason"] = finish
            if finish == "SAFETY":
                cand["safetyRatings"] = SAFETY_RATINGS
        cand["index"] = index
        return cand

    def _envelope(self, candidates: list | None, usage: dict) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if candidates is not None:
            out["candidates"] = candidates
        else:
            out["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": SAFETY_RATINGS}
        out.update(usageMetadata=usage, modelVersion=self.model, responseId=self.id)
        return out

    def response(self) -> dict[str, Any]:
        if self.blocked:
            return self._envelope(None, {"promptTokenCount": self.answer.prompt_tokens,
                                         "totalTokenCount": self.answer.prompt_tokens})
        finish = FINISH[self.answer.finish]
        return self._envelope([self._candidate(i, self._parts(), finish)
                               for i in range(self.candidates)], usage_metadata(self.answer))

    def chunks(self) -> list[dict[str, Any]]:
        """Text arrives word by word, function calls whole; the last chunk carries the
        finish reason and the final usage (earlier ones a partial usage)."""
        if self.blocked:
            return [self.response()]
        a, finish = self.answer, FINISH[self.answer.finish]
        if a.tool_calls or a.text is None:
            return [self.response()]
        pieces = split_words(a.text)
        out = []
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            out.append(self._envelope(
                [self._candidate(i, [{"text": piece}], finish if last else None)
                 for i in range(self.candidates)],
                usage_metadata(a, final=last)))
        return out


# -- embeddings -------------------------------------------------------------------

def _embed_one(request: Any, model: str) -> tuple[list[float], int]:
    if not isinstance(request, dict) or not isinstance(request.get("content"), dict):
        raise InvalidRequest("* EmbedContentRequest.content: content is not specified")
    named = request.get("model")
    if named is not None and named != f"models/{model}":
        raise InvalidRequest(f"Model {named} in the request does not match models/{model} "
                             "in the URL.")
    text = " ".join(p.get("text", "") for p in request["content"].get("parts") or ()
                    if isinstance(p, dict))
    dim = _bounded(request.get("outputDimensionality") or 8, "outputDimensionality",
                   MAX_DIMENSIONS)
    return embedding_vector(text, dim), max(1, words(text))


def embed_content(body: Any, model: str) -> dict[str, Any]:
    values, _ = _embed_one(body, model)
    return {"embedding": {"values": values}}


def batch_embed_contents(body: Any, model: str) -> dict[str, Any]:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
    return {"embeddings": [{"values": _embed_one(r, model)[0]} for r in requests]}


# (name, display name, supported methods) as GET /v1beta/models lists them; the tuning
# model is listed (as Gemini does) but answers no generate or embed call.
MODELS = [
    ("models/gemini-2.5-flash", "Gemini 2.5 Flash", ["generateContent", "countTokens"]),
    ("models/gemini-embedding-001", "Gemini Embedding 001", ["embedContent"]),
    ("models/gemini-tuning-base", "Tuning base", ["createTunedModel"]),
]


def models() -> dict[str, Any]:
    return {"models": [{"name": name, "displayName": display,
                        "supportedGenerationMethods": methods}
                       for name, display, methods in MODELS]}


def count_tokens(body: Any, model: str) -> dict[str, int]:
    """models/{model}:countTokens: `contents`, or a whole `generateContentRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received.")
    request = body.get("generateContentRequest")
    if request is None:
        request = {"contents": body.get("contents")}
    if not isinstance(request, dict) or not request.get("contents"):
        raise InvalidRequest("* CountTokensRequest: contents or generateContentRequest "
                             "is required")
    return {"totalTokens": answer(parse(request, model), Behavior()).prompt_tokens}


def wrong_shape_response(response: dict[str, Any]) -> dict[str, Any]:
    """The response with members of the wrong types around its own candidates
    (``wrong-shape``): parts that are no objects, a text that is a number, function calls
    whose name is a number or that are no objects, a candidate that is a string, prompt
    feedback that is a string, a list response id, a number model version, a prompt
    token count that is a list. What a reader can use is the real parts and the output
    token count."""
    candidates = []
    for candidate in response.get("candidates") or ():
        parts = (candidate.get("content") or {}).get("parts") or []
        odd = [5, "no part", {"text": 5}, {"functionCall": "no object"},
               {"functionCall": {"name": 3, "args": "no object"}}, {"text": ["x"]}]
        candidates.append(dict(candidate, content={"role": "model", "parts": odd + parts}))
    meta = dict(response.get("usageMetadata") or {}, promptTokenCount=[1])
    return dict(response, candidates=[*candidates, "no candidate"], usageMetadata=meta,
                promptFeedback="none", modelVersion=5, responseId=["x"])
