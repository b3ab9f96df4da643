"""An Anthropic Messages request (what the `anthropic` SDK, Claude Code and other
Anthropic clients send) as an OpenAI chat request, for the Anthropic front.

What has no OpenAI equivalent is left out: `cache_control`, `top_k`, thinking blocks,
server tools (web search, code execution…). Requests routed to Anthropic itself do not
depend on this: the Anthropic adapter sends the caller's own body.
"""

from __future__ import annotations

from typing import Any

from heliograph.body_fields import list_field, object_field, text
from heliograph.formats import reasoning
from heliograph.formats.anthropic.blocks import arguments, data_url
from heliograph.formats.anthropic.tables import TOOL_CHOICES_TO_OPENAI
from heliograph.formats.openai import chat, request_fields
from heliograph.formats.openai.chat import bad_request as _bad

# OpenAI reasoning models take max_completion_tokens and refuse max_tokens.
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")


def _blocks(content: Any, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return content
    raise _bad(f"{where}: must be a string or a list of content blocks")


def _source_url(block: dict, where: str) -> str | None:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    if source.get("type") == "base64":
        return data_url(source)
    if source.get("type") == "url":
        return source.get("url")
    if source.get("type") == "text":            # a plain-text document
        return None
    raise _bad(f"{where}.source: type {source.get('type')!r} cannot be sent to this model")


def _part(block: dict, where: str) -> dict | None:
    """One user content block as an OpenAI content part; None for what has no equivalent."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": text(block.get("text"), f"{where}.text")}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _source_url(block, where)}}
    if kind == "document":
        url = _source_url(block, where)
        if url is None:
            return {"type": "text", "text": text(object_field(block, "source", where + ".")
                                                 .get("data"), f"{where}.source.data")}
        return {"type": "file", "file": {"filename": block.get("title") or "document.pdf",
                                         "file_data": url}}
    return None     # search results, server tool results…: nothing to map them to


def _content(parts: list[dict]) -> str | list[dict]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _tool_result(block: dict, where: str) -> tuple[dict, list[dict]]:
    """(the tool message, image parts OpenAI tool messages cannot hold)."""
    content = block.get("content")
    parts = [p for j, b in enumerate(_blocks(content, where) if content else [])
             if (p := _part(b, f"{where}[{j}]")) is not None]
    texts = [p for p in parts if p["type"] == "text"]
    result = "".join(p["text"] for p in texts)
    if block.get("is_error"):
        result = "Error: " + result
    return ({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": result},
            [p for p in parts if p["type"] != "text"])


def _user(blocks: list[dict], where: str) -> list[dict]:
    out, parts = [], []
    for j, block in enumerate(blocks):
        if block.get("type") == "tool_result":
            message, extra = _tool_result(block, f"{where}[{j}]")
            out.append(message)
            parts += extra
        elif (part := _part(block, f"{where}[{j}]")) is not None:
            parts.append(part)
    if parts:
        out.append({"role": "user", "content": _content(parts)})
    return out


def _assistant(blocks: list[dict], where: str) -> list[dict]:
    said = "".join(text(b.get("text"), f"{where}[{j}].text")
                   for j, b in enumerate(blocks) if b.get("type") == "text")
    calls = [chat.tool_call(b.get("id"), b.get("name"), arguments(b))
             for b in blocks if b.get("type") == "tool_use"]
    if not said and not calls:
        return []       # e.g. only thinking blocks, which other providers cannot take
    message: dict[str, Any] = {"role": "assistant", "content": said or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _tools(body: dict) -> list[dict]:
    tools = []
    for tool in list_field(body, "tools"):
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            continue    # Anthropic's server tools run at Anthropic only
        function = {"name": tool.get("name"),
                    "parameters": tool.get("input_schema") or {"type": "object"}}
        if tool.get("description"):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    return tools


def server_tools(body: dict) -> list[str]:
    """Where the Anthropic request's server tools are (`tools[i]`, by type): they run at
    Anthropic only, so a request holding them cannot go to any other provider."""
    tools = body.get("tools")
    return [f"tools[{i}] ({tool.get('type')})" for i, tool in
            enumerate(tools if isinstance(tools, list) else ())
            if isinstance(tool, dict) and tool.get("type") not in (None, "custom")]


def _reasoning(body: dict) -> str | None:
    """reasoning_effort for Anthropic's thinking object (reasoning.py's table)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise _bad("thinking.budget_tokens: must be a positive integer")
    return reasoning.effort_of(budget)


def _tool_choice(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return TOOL_CHOICES_TO_OPENAI.get(kind)


def _validate(body: dict) -> None:
    """The fields the translation reads, checked as Anthropic checks them (Anthropic's
    own answer to such a request is a 400 too)."""
    request_fields.flag(body, "stream")
    request_fields.number(body, "temperature", 0, 1)
    request_fields.number(body, "top_p", 0, 1)
    request_fields.whole(body, "top_k", 0)
    strings_only = body.get("stop_sequences")
    if strings_only is not None and (not isinstance(strings_only, list) or not all(
            isinstance(s, str) for s in strings_only)):
        raise _bad("stop_sequences: must be a list of strings")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise _bad("system: must be a string or a list of text blocks")


def to_openai(body: dict) -> dict:
    _validate(body)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _bad("max_tokens: Field required (a positive integer)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) for m in messages):
        raise _bad("messages: must be a non-empty list of messages")
    model = body["model"]
    out_messages: list[dict] = []
    system = body.get("system")
    if system:
        prompt = "\n".join(text(b.get("text"), f"system[{j}].text")
                           for j, b in enumerate(_blocks(system, "system"))
                           if b.get("type") == "text")
        out_messages.append({"role": "system", "content": prompt})
    for i, m in enumerate(messages):
        blocks = _blocks(m.get("content"), f"messages.{i}.content")
        if m.get("role") == "user":
            out_messages += _user(blocks, f"messages.{i}.content")
        elif m.get("role") == "assistant":
            out_messages += _assistant(blocks, f"messages.{i}.content")
        else:
            raise _bad(f"messages.{i}.role: must be 'user' or 'assistant' (the system prompt "
                       "is the top-level 'system' field)")
    out: dict[str, Any] = {"model": model, "messages": out_messages}
    limit = "max_completion_tokens" if any(
        part.startswith(_REASONING_MODELS) for part in model.split("/")) else "max_tokens"
    out[limit] = max_tokens
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user = object_field(body, "metadata").get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    tools = _tools(body)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if object_field(body, "tool_choice").get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    effort = _reasoning(body)
    if effort is not None:
        out["reasoning_effort"] = effort
    output_format = object_field(body, "output_format")
    if output_format.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": output_format.get("schema") or {}}}
    if body.get("stream") is True:
        # The renderer needs the usage chunk for message_delta's token counts.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out
