"""An OpenAI chat request as an Anthropic Messages request.

Where the two differ:
- system and developer messages, wherever they are, become the top-level `system`;
- tool results (role "tool") become `tool_result` blocks of a user message, and
  consecutive messages of one role are merged, since Anthropic wants parallel tool
  results together in the one user message that follows the tool calls;
- `max_tokens` is required by Anthropic: the caller's, else a default per model family;
- `response_format` has no Anthropic equivalent: JSON mode is a forced tool whose input
  schema is the requested one, and the reply's call to it comes back as the message
  content (see `answer_to_openai`).
"""

from __future__ import annotations

from typing import Any

from heliograph.body_fields import list_field, object_field, strings, text
from heliograph.formats import reasoning
from heliograph.formats.anthropic.blocks import base64_source
from heliograph.formats.anthropic.tables import TOOL_CHOICES
from heliograph.formats.openai import request_fields
from heliograph.formats.openai.chat import (
    append_turn,
    data_url,
    each_message,
    named_function,
    tool_call_parts,
)
from heliograph.formats.openai.chat import bad_request as _bad

JSON_TOOL = "json_answer"
# Older Claude 3 models cap output at 4096 tokens; later ones allow at least 8192.
_SMALL_OUTPUT_MODELS = ("claude-3-opus", "claude-3-sonnet", "claude-3-haiku")


def default_max_tokens(model: str) -> int:
    return 4096 if model.startswith(_SMALL_OUTPUT_MODELS) else 8192


def _with_cache_control(block: dict, part: dict) -> dict:
    # OpenAI-format clients that know Anthropic mark cache breakpoints on content parts.
    if isinstance(part, dict) and part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(part: dict, where: str) -> dict:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _bad("image_url parts need an image_url.url", where)
    inline = data_url(url)
    if inline is not None:
        return {"type": "image", "source": base64_source(inline)}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _bad("an image URL must be http(s) or a base64 data URL", where)


def _file_block(part: dict, where: str) -> dict:
    file = object_field(part, "file", where + ".")
    inline = data_url(text(file.get("file_data"), f"{where}.file.file_data"))
    if inline is None:
        raise _bad("Anthropic takes files as base64 data URLs in file.file_data "
                   "(file_id is OpenAI's own storage)", where)
    return {"type": "document", "source": base64_source(inline)}


def _content_blocks(content: Any, where: str) -> list[dict]:
    """User/system content (a string or parts) as Anthropic blocks; empty text dropped
    (Anthropic rejects empty text blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _bad("message content must be a string or a list of parts", where)
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        here = f"{where}[{j}]"
        if kind == "text":
            if value := text(part.get("text"), f"{here}.text"):
                blocks.append(_with_cache_control({"type": "text", "text": value}, part))
        elif kind == "image_url":
            blocks.append(_with_cache_control(_image_block(part, here), part))
        elif kind == "file":
            blocks.append(_with_cache_control(_file_block(part, here), part))
        else:
            raise _bad(f"content part type {kind!r} cannot be sent to Anthropic", here)
    return blocks


def _tool_use_blocks(tool_calls: list, where: str) -> list[dict]:
    blocks = []
    for j, call in enumerate(tool_calls):
        name, arguments = tool_call_parts(call, f"{where}[{j}]", need_id=True)
        blocks.append({"type": "tool_use", "id": call["id"], "name": name,
                       "input": arguments})
    return blocks


def _messages(openai_messages: Any) -> tuple[list[dict], list[dict]]:
    system: list[dict] = []
    out: list[dict] = []
    for i, role, m in each_message(openai_messages):
        where = f"messages[{i}].content"
        if role == "system":
            system += [b for b in _content_blocks(m.get("content"), where)
                       if b["type"] == "text"]
        elif role == "user":
            append_turn(out, "user", _content_blocks(m.get("content"), where), "content")
        elif role == "assistant":
            content = m.get("content")
            blocks = [b for b in _content_blocks(content, where) if b["type"] == "text"] \
                if content else []
            blocks += _tool_use_blocks(list_field(m, "tool_calls", f"messages[{i}]."),
                                       f"messages[{i}].tool_calls")
            append_turn(out, "assistant", blocks, "content")
        else:   # tool
            if not isinstance(m.get("tool_call_id"), str) or not m["tool_call_id"]:
                raise _bad("a tool message needs the tool_call_id of the call it answers",
                           f"messages[{i}].tool_call_id")
            content = m.get("content")
            result = content if isinstance(content, str) else _content_blocks(content, where)
            append_turn(out, "user", [{"type": "tool_result",
                                       "tool_use_id": m.get("tool_call_id"),
                                       "content": result}], "content")
    if not out and system:
        # Anthropic needs a message: a conversation of system text alone is sent as the
        # user's (its instructions are all there is to answer).
        return [], [{"role": "user", "content": system}]
    return system, out


def _tools(body: dict) -> list[dict]:
    tools = []
    for i, tool in enumerate(list_field(body, "tools")):
        function = named_function(tool, f"tools[{i}]", "Anthropic")
        entry = {"name": function["name"],
                 "input_schema": function.get("parameters") or {"type": "object",
                                                                 "properties": {}}}
        if function.get("description"):
            entry["description"] = function["description"]
        tools.append(_with_cache_control(entry, tool))
    return tools


def _tool_choice(choice: Any) -> dict | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return {"type": TOOL_CHOICES[choice]}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    raise _bad("tool_choice must be auto, none, required or a named function", "tool_choice")


def _json_schema(response_format: Any) -> dict | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = object_field(response_format, "json_schema", "response_format.").get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    if kind == "json_object":
        return {"type": "object"}
    return None


def _limits(body: dict, model: str) -> dict[str, Any]:
    """max_tokens, and thinking from reasoning_effort (or Anthropic's own `thinking`).
    OpenAI's limit counts reasoning tokens too, so a caller's limit bounds both; without
    one the thinking budget comes on top of the usual default."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    effort = body.get("reasoning_effort")
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") != "enabled":
            return {"max_tokens": asked or default_max_tokens(model), "thinking": thinking}
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _bad("thinking.budget_tokens must be an integer", "thinking.budget_tokens")
    elif effort in reasoning.EFFORT_BUDGETS:
        budget = reasoning.budget_of(effort)
    else:
        return {"max_tokens": asked or default_max_tokens(model)}
    if asked is None:
        return {"max_tokens": default_max_tokens(model) + budget,
                "thinking": {"type": "enabled", "budget_tokens": budget}}
    budget = min(budget, asked - 1)
    if budget < reasoning.ANTHROPIC_MIN_BUDGET:
        raise _bad(f"reasoning on Claude needs a token limit above "
                   f"{reasoning.ANTHROPIC_MIN_BUDGET} (its smallest thinking budget), "
                   f"got {asked}", "max_completion_tokens")
    return {"max_tokens": asked, "thinking": {"type": "enabled", "budget_tokens": budget}}


def to_anthropic(body: dict) -> tuple[dict, str | None]:
    """(the Anthropic request, the name of the JSON-mode tool when one was added)."""
    request_fields.check(body, "Anthropic")
    model = body["model"]
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {"model": model, "messages": messages}
    out.update(_limits(body, model))
    if system:
        out["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = strings(body, "stop")
    if stop:
        out["stop_sequences"] = stop
    if body.get("stream") is True:
        out["stream"] = True
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    tools = _tools(body)
    choice = _tool_choice(body.get("tool_choice"))
    json_tool = None
    schema = _json_schema(object_field(body, "response_format"))
    if schema is not None:
        json_tool = JSON_TOOL
        tools.append({"name": JSON_TOOL, "description": "Give the answer as a JSON object "
                      "matching this schema.", "input_schema": schema})
        if len(tools) == 1:
            choice = {"type": "tool", "name": JSON_TOOL}
    if tools:
        out["tools"] = tools
        if body.get("parallel_tool_calls") is False:
            choice = dict(choice or {"type": "auto"}, disable_parallel_tool_use=True)
    if choice is not None and tools:
        out["tool_choice"] = choice
    return out, json_tool
