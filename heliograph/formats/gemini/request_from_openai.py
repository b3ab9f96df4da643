"""An OpenAI chat request as a Gemini generateContent request.

Where the two differ:
- system and developer messages become `systemInstruction`; assistant is role "model";
- tool results become `functionResponse` parts, which Gemini matches by function
  *name* (looked up from the earlier tool call's id) and wants as an object, and all
  results answering one turn of parallel calls go in one content;
- Gemini 3 refuses a replayed function call without the `thoughtSignature` it came with.
  OpenAI has no field for it, so the signature travels inside the tool call id
  (`call_<hex>__thought__<signature>`) and is restored here: stateless and lossless;
- JSON mode is `responseMimeType` plus `responseJsonSchema` (full JSON Schema), and tools
  use `parametersJsonSchema`, so OpenAI schemas need no conversion.
"""

from __future__ import annotations

import mimetypes
import secrets
from typing import Any

import orjson

from heliograph.body_fields import list_field, object_field, strings, text
from heliograph.formats import reasoning
from heliograph.formats.openai import request_fields
from heliograph.formats.openai.chat import (
    append_turn,
    data_url,
    each_message,
    named_function,
    tool_call_parts,
)
from heliograph.formats.openai.chat import bad_request as _bad

SIGNATURE_MARK = "__thought__"


def tool_call_id(signature: str | None) -> str:
    base = "call_" + secrets.token_hex(12)
    if not signature:
        return base
    # Signatures are base64; ids should stay [A-Za-z0-9_-], so use the URL-safe alphabet.
    return base + SIGNATURE_MARK + signature.replace("+", "-").replace("/", "_").rstrip("=")


def signature_of(call_id: str) -> str | None:
    _, mark, encoded = call_id.partition(SIGNATURE_MARK)
    if not mark or not encoded:
        return None
    standard = encoded.replace("-", "+").replace("_", "/")
    return standard + "=" * (-len(standard) % 4)


def _part(part: dict, where: str) -> dict:
    kind = part.get("type")
    if kind == "text":
        return {"text": text(part.get("text"), f"{where}.text")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        inline = data_url(url) if isinstance(url, str) else None
        if inline is not None:
            return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
        if isinstance(url, str) and url.startswith(("http://", "https://", "gs://")):
            mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
            return {"fileData": {"mimeType": mime, "fileUri": url}}
        raise _bad("an image URL must be http(s), gs:// or a base64 data URL", where)
    if kind == "file":
        inline = data_url(text(object_field(part, "file", where + ".").get("file_data"),
                               f"{where}.file.file_data"))
        if inline is None:
            raise _bad("Gemini takes files as base64 data URLs in file.file_data", where)
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    if kind == "input_audio":
        audio = object_field(part, "input_audio", where + ".")
        audio_format = text(audio.get("format"), f"{where}.input_audio.format") or "wav"
        return {"inlineData": {"mimeType": f"audio/{audio_format}",
                               "data": text(audio.get("data"), f"{where}.input_audio.data")}}
    raise _bad(f"content part type {kind!r} cannot be sent to Gemini", where)


def _parts(content: Any, where: str) -> list[dict]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise _bad("message content must be a string or a list of parts", where)
    parts = [_part(p if isinstance(p, dict) else {}, f"{where}[{j}]")
             for j, p in enumerate(content)]
    return [p for p in parts if p.get("text") != ""]   # Gemini rejects empty text parts


def _function_calls(tool_calls: list, names: dict[str, str], where: str) -> list[dict]:
    parts = []
    for j, call in enumerate(tool_calls):
        name, args = tool_call_parts(call, f"{where}[{j}]", need_id=False)
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        call_id = str(call.get("id") or "")
        names[call_id] = name
        signature = signature_of(call_id)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(message: dict, names: dict[str, str], where: str) -> dict:
    if not isinstance(message.get("tool_call_id"), str) or not message["tool_call_id"]:
        raise _bad("a tool message needs the tool_call_id of the call it answers",
                   f"{where}.tool_call_id")
    name = names.get(message["tool_call_id"]) or message.get("name")
    if not name:
        raise _bad("a tool message must answer a tool call made earlier in the "
                   "conversation (Gemini needs the function's name)", where)
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise _bad("a tool message's content must be a string or a list of parts", where)
    result = content if isinstance(content, str) else "".join(
        text(p.get("text"), f"{where}.content[{j}].text")
        for j, p in enumerate(content or ()) if isinstance(p, dict))
    try:
        parsed = orjson.loads(result)
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"result": result}
    return {"functionResponse": {"name": name, "response": response}}


def _contents(messages: Any) -> tuple[list[dict], list[dict]]:
    system: list[dict] = []
    contents: list[dict] = []
    names: dict[str, str] = {}
    for i, role, m in each_message(messages):
        where = f"messages[{i}].content"
        if role == "system":
            system += [p for p in _parts(m.get("content"), where) if "text" in p]
        elif role == "user":
            append_turn(contents, "user", _parts(m.get("content"), where), "parts")
        elif role == "assistant":
            append_turn(contents, "model", _parts(m.get("content"), where)
                        + _function_calls(list_field(m, "tool_calls", f"messages[{i}]."),
                                          names, f"messages[{i}].tool_calls"), "parts")
        else:   # tool
            append_turn(contents, "user", [_function_response(m, names, f"messages[{i}]")],
                        "parts")
    if not contents and system:
        # Gemini needs contents: a conversation of system text alone is sent as the
        # user's (its instructions are all there is to answer).
        return [], [{"role": "user", "parts": system}]
    return system, contents


def _tool_config(choice: Any) -> dict | None:
    if choice is None:
        return None
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames":
                                          [choice["function"].get("name")]}}
    raise _bad("tool_choice must be auto, none, required or a named function", "tool_choice")


def _generation_config(body: dict) -> dict:
    config: dict[str, Any] = {}
    for openai_name, gemini_name in (("temperature", "temperature"), ("top_p", "topP"),
                                     ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                                     ("frequency_penalty", "frequencyPenalty"),
                                     ("n", "candidateCount"), ("top_k", "topK")):
        if body.get(openai_name) is not None:
            config[gemini_name] = body[openai_name]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = strings(body, "stop")
    if stop:
        config["stopSequences"] = stop
    thinking = _thinking(body)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    response_format = object_field(body, "response_format")
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = object_field(response_format, "json_schema", "response_format.").get("schema")
        if response_format["type"] == "json_schema" and isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    return config


def _thinking(body: dict) -> dict | None:
    """thinkingConfig from reasoning_effort, or from Anthropic's `thinking` object."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            return {"thinkingBudget": budget, "includeThoughts": True}
        return {"thinkingBudget": -1, "includeThoughts": True}    # -1: Gemini decides
    effort = body.get("reasoning_effort")
    return reasoning.gemini_thinking(effort, body["model"]) if effort else None


def to_gemini(body: dict) -> dict:
    request_fields.check(body, "Gemini")
    system, contents = _contents(body.get("messages"))
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    declarations = []
    for i, tool in enumerate(list_field(body, "tools")):
        function = named_function(tool, f"tools[{i}]", "Gemini", typed=False)
        declaration = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None:
            out["toolConfig"] = tool_config
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out
