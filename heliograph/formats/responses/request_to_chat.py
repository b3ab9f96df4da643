"""A Responses API request → an OpenAI chat request, for providers that only speak chat
(Anthropic, Gemini, most OpenAI-compatible servers).

What maps: `instructions` (a system message), `input` as a string or a list of items
(messages with text, image and file parts; `function_call` and `function_call_output`
items; the gateway's own `compaction` items), function tools and `tool_choice`,
`text.format` (json_schema / json_object), `reasoning.effort`, `max_output_tokens`,
`temperature`, `top_p`, `parallel_tool_calls`, `user`.
What is refused with a 400 naming the field: hosted tools (web search, file search,
code interpreter…), `background`, `conversation`, `prompt`, `item_reference`s, parts
referring to uploaded files by id — none of which a chat provider can honour.
Dropped, having no chat equivalent that changes the answer: `metadata`, `include`,
`truncation`, `service_tier`, `store` (the gateway keeps stored responses itself),
`prompt_cache_key`, `prompt_cache_retention`, `safety_identifier`, `top_logprobs`,
`max_tool_calls`, `stream_options`, `text.verbosity`, `reasoning.summary` (a summary is
returned whenever the provider reports its thinking).
`previous_response_id` is resolved before this point (proxy/responses.py); one that is
still here names a response the gateway does not hold.
"""

from __future__ import annotations

from typing import Any

from heliograph.body_fields import list_field, object_field
from heliograph.errors import BadRequest
from heliograph.formats.responses.items import compaction_text, input_items

# Plain options with the same name and meaning in both APIs.
_SAME = ("temperature", "top_p", "parallel_tool_calls", "user")
_REFUSED = ("background", "conversation", "prompt")


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(f"{message} ({param})", code="invalid_request")


def to_chat(body: dict, provider: str) -> dict:
    """The chat body for `body`, a Responses request routed to `provider`."""
    if body.get("previous_response_id"):
        raise BadRequest(f"Previous response with id {body['previous_response_id']!r} not "
                         "found.", code="previous_response_not_found")
    for name in _REFUSED:
        if body.get(name) not in (None, False):
            raise _bad(f"'{name}' is not supported by provider {provider!r} (the gateway "
                       "translates the Responses API to its chat API)", name)
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _bad("'instructions' must be a string", "instructions")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    messages += _messages(input_items(body.get("input")))
    if not messages:
        raise _bad("'input' must not be empty", "input")
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for name in _SAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise _bad("'stream' must be a boolean", "stream")
        chat["stream"] = body["stream"]
        if body["stream"] is True:
            chat["stream_options"] = {"include_usage": True}
    tools = _tools(list_field(body, "tools"), provider)
    if tools:
        chat["tools"] = tools
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format(object_field(object_field(body, "text"), "format",
                                                    "text."))
    if response_format is not None:
        chat["response_format"] = response_format
    effort = object_field(body, "reasoning").get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    return chat


def _messages(items: list[dict]) -> list[dict]:
    """Chat messages for Responses input items: consecutive function calls become one
    assistant message with several tool calls (parallel calls), as chat has them."""
    out: list[dict] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = item.get("type") or "message"
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = {"id": _string(item, "call_id", where), "type": "function",
                    "function": {"name": _string(item, "name", where),
                                 "arguments": item.get("arguments") or "{}"}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last is not None and last["role"] == "assistant":
                last["tool_calls"] = [call]
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _parts(output, where + ".output")
            out.append({"role": "tool", "tool_call_id": _string(item, "call_id", where),
                        "content": content})
        elif kind == "compaction":
            out.append({"role": "assistant", "content": compaction_text(item, where)})
        elif kind == "reasoning":
            continue  # the provider's own reasoning: chat has no way to send it back
        else:
            raise _bad(f"input items of type {kind!r} cannot be translated to a chat "
                       "request", where + ".type")
    return out


def _string(item: dict, name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise _bad(f"'{name}' must be a non-empty string", f"{where}.{name}")
    return value


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _bad(f"message role {role!r} is not one of user, assistant, system, "
                   "developer", where + ".role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = _parts(content, where + ".content")
    if role != "user":  # only user messages may carry images and files in chat
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _parts(content: Any, where: str) -> list[dict]:
    if not isinstance(content, list):
        raise _bad("content must be a string or an array of content parts", where)
    out: list[dict] = []
    for i, part in enumerate(content):
        at = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            if not isinstance(part.get("text"), str):
                raise _bad("a text part needs 'text' (a string)", at + ".text")
            out.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            out.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise _bad("images must be given as 'image_url' (a URL or a data URL); "
                           "uploaded file ids cannot be sent to this provider", at)
            image = {"url": url}
            if part.get("detail"):
                image["detail"] = part["detail"]
            out.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            if not isinstance(part.get("file_data"), str):
                raise _bad("files must be given inline as 'file_data'; uploaded file ids "
                           "and URLs cannot be sent to this provider", at)
            out.append({"type": "file", "file": {"file_data": part["file_data"],
                                                 "filename": part.get("filename")}})
        else:
            raise _bad(f"content parts of type {kind!r} cannot be translated to a chat "
                       "request", at + ".type")
    return out


def _tools(tools: list, provider: str) -> list[dict]:
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise _bad(f"tool type {kind!r} is not supported by provider {provider!r}: only "
                       "function tools can be translated to its chat API", f"tools[{i}].type")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _bad("a function tool needs a name", f"tools[{i}].name")
        function: dict[str, Any] = {"name": tool["name"],
                                    "parameters": tool.get("parameters") or
                                    {"type": "object", "properties": {}}}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _bad("tool_choice must be 'auto', 'none', 'required' or a function "
               "({\"type\": \"function\", \"name\": ...})", "tool_choice")


def _response_format(fmt: dict) -> dict | None:
    kind = fmt.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("a json_schema format needs 'schema' (an object)", "text.format.schema")
        schema = {"name": fmt.get("name") or "response", "schema": fmt["schema"]}
        for name in ("description", "strict"):
            if fmt.get(name) is not None:
                schema[name] = fmt[name]
        return {"type": "json_schema", "json_schema": schema}
    raise _bad(f"text.format type {kind!r} is not one of text, json_object, json_schema",
               "text.format.type")
