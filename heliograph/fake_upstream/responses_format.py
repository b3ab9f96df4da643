"""OpenAI Responses API wire format: requests into an `Ask`, the `Answer` into a response
object or its stream of typed events (no I/O here)."""

from __future__ import annotations

import time
from typing import Any

from .behavior import Behavior
from .conversation import (
    Answer,
    Ask,
    InvalidRequest,
    Tool,
    Turn,
    answer,
    new_id,
    split_chars,
    split_words,
)


def _content(content: Any) -> tuple[list[str], int]:
    if isinstance(content, str):
        return [content], 0
    texts, images = [], 0
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "input_image":
            images += 1
    return [" ".join(texts)], images


def _turns(body: dict) -> list[Turn]:
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("Missing required parameter: 'input'.", "input")
    turns = [Turn("system", [body["instructions"]])] if body.get("instructions") else []
    calls: set[str | None] = set()  # call_ids as sent (a missing one is None)
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidRequest("Invalid 'input': expected an array of objects.", "input")
        kind = item.get("type") or "message"
        if kind == "function_call":
            calls.add(item.get("call_id"))
            turns.append(Turn("assistant"))
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                raise InvalidRequest(f"No tool call found for function call output with "
                                     f"call_id {item.get('call_id')}.", "input")
            output = item.get("output")
            turns.append(Turn("tool", tool_results=[output if isinstance(output, str)
                                                    else str(output)]))
        elif kind == "message":
            role = item.get("role")
            role = "system" if role == "developer" else role
            texts, images = _content(item.get("content"))
            turns.append(Turn(str(role), texts, images))
    return turns


def parse(body: Any) -> Ask:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("Missing required parameter: 'model'.", "model")
    tools = [Tool(t["name"], t.get("parameters") or {}) for t in body.get("tools") or ()
             if isinstance(t, dict) and t.get("type") == "function" and t.get("name")]
    ask = Ask(body["model"], _turns(body), tools,
              parallel_tools=body.get("parallel_tool_calls") is not False,
              max_tokens=body.get("max_output_tokens"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        ask.forced_tool = choice.get("name")
    elif choice in ("none", "required"):
        ask.tool_choice = choice
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        ask.json_schema = fmt.get("schema") or {}
    elif fmt.get("type") == "json_object":
        ask.json_object = True
    return ask


def usage(a: Answer) -> dict[str, Any]:
    return {"input_tokens": a.prompt_tokens,
            "input_tokens_details": {"cached_tokens": a.cached_tokens},
            "output_tokens": a.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": a.reasoning_tokens},
            "total_tokens": a.total_tokens}


class ResponseReply:
    def __init__(self, body: dict, b: Behavior, model: str | None = None):
        self.body = body
        self.model = model or body["model"]
        self.id = new_id("resp_", 40)
        self.created = int(time.time())
        self.answer = answer(parse(body), b)
        self.message_id = new_id("msg_", 40)

    @property
    def total_tokens(self) -> int:
        return self.answer.total_tokens

    def output(self) -> list[dict[str, Any]]:
        a = self.answer
        if a.tool_calls:
            return [{"id": "fc_" + c.id[5:], "type": "function_call", "status": "completed",
                     "arguments": c.arguments, "call_id": c.id, "name": c.name}
                    for c in a.tool_calls]
        return [{"id": self.message_id, "type": "message", "status": "completed",
                 "role": "assistant",
                 "content": [{"type": "output_text", "text": a.text or "",
                              "annotations": [], "logprobs": []}]}]

    def response(self, final: bool = True) -> dict[str, Any]:
        incomplete = self.answer.finish == "length"
        status = ("incomplete" if incomplete else "completed") if final else "in_progress"
        body = self.body
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "background": False, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if final and incomplete
            else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": self.model,
            "output": self.output() if final else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None}, "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": usage(self.answer) if final else None, "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response(final=False)},
            {"type": "response.in_progress", "response": self.response(final=False)}]
        for index, item in enumerate(self.output()):
            opened = dict(item, status="in_progress")
            if item["type"] == "message":
                part = item["content"][0]
                opened["content"] = []
                out.append({"type": "response.output_item.added", "output_index": index,
                            "item": opened})
                ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
                out.append({"type": "response.content_part.added", **ids,
                            "part": dict(part, text="")})
                out += [{"type": "response.output_text.delta", **ids, "delta": piece,
                         "logprobs": []} for piece in split_words(part["text"])]
                out.append({"type": "response.output_text.done", **ids, "text": part["text"],
                            "logprobs": []})
                out.append({"type": "response.content_part.done", **ids, "part": part})
            else:
                opened["arguments"] = ""
                out.append({"type": "response.output_item.added", "output_index": index,
                            "item": opened})
                ids = {"item_id": item["id"], "output_index": index}
                out += [{"type": "response.function_call_arguments.delta", **ids,
                         "delta": piece} for piece in split_chars(item["arguments"])]
                out.append({"type": "response.function_call_arguments.done", **ids,
                            "arguments": item["arguments"]})
            out.append({"type": "response.output_item.done", "output_index": index,
                        "item": item})
        final = self.response()
        out.append({"type": f"response.{final['status']}", "response": final})
        for number, event in enumerate(out):
            event["sequence_number"] = number
        return out


def compacted(body: dict, b: Behavior) -> dict[str, Any]:
    """`/responses/compact`: the input's user messages and one opaque compaction item
    (OpenAI's is encrypted; the fake's is random bytes, readable by nobody)."""
    reply = ResponseReply(dict(body, input=body.get("input") or ""), b)
    raw = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) \
        else [i for i in raw or () if isinstance(i, dict) and i.get("role") == "user"]
    users = [dict(item, id=new_id("msg_", 40), type="message", status="completed")
             for item in items]
    return {"id": new_id("resp_", 40), "object": "response.compaction",
            "created_at": reply.created,
            "output": users + [{"type": "compaction", "id": new_id("cmp_", 40),
                                "encrypted_content": "fake-encrypted-" + new_id("", 40)}],
            "usage": usage(reply.answer)}
