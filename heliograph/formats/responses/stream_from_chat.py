"""OpenAI chat stream chunks → the Responses API's typed stream events, for callers of
`/v1/responses` whose model only speaks chat.

The event sequence is OpenAI's: `response.created`, `response.in_progress`; for each
output item `response.output_item.added`, its deltas and their `.done` events, then
`response.output_item.done`; last `response.completed` (or `response.incomplete` when
the answer was cut by max_output_tokens or a content filter), carrying the whole
response with its usage. Every event has a `sequence_number`, counting from 0.

Chat streams interleave nothing: reasoning, then text, then tool calls one index after
another. An item is closed when the next kind (or the next tool call) begins.
"""

from __future__ import annotations

import time
from typing import Any

from heliograph.formats.openai import chunk_fields
from heliograph.formats.responses.answer_from_chat import (
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    text_part,
    usage,
)
from heliograph.formats.responses.items import new_id


class _Item:
    """The output item being streamed."""

    def __init__(self, kind: str, index: int, item_id: str, key: Any = None):
        self.kind, self.index, self.id, self.key = kind, index, item_id, key
        self.text = ""
        self.call_id = ""
        self.name = ""


class ChatToResponsesStream:
    def __init__(self, request: dict, response_id: str | None = None):
        self.request = request
        self.id = response_id or new_id("resp_")
        self.created_at = int(time.time())
        self.model = str(request.get("model") or "")
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.output: list[dict] = []
        self._sequence = 0
        self._item: _Item | None = None
        self._started = False

    def _event(self, kind: str, **fields: Any) -> dict:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _response(self, status: str) -> dict:
        final = status != "in_progress"
        return response_object(self.request, self.id, self.created_at, self.model, status,
                               list(self.output) if final else [],
                               self.usage if final else None,
                               self.finish_reason if final else None)

    def start(self) -> list[dict]:
        self._started = True
        return [self._event("response.created", response=self._response("in_progress")),
                self._event("response.in_progress", response=self._response("in_progress"))]

    def feed(self, chunk: dict) -> list[dict]:
        """The events one chat chunk becomes."""
        out = [] if self._started else self.start()
        # Members of the wrong type read as absent (chunk_fields): the stream goes on.
        if model := chunk_fields.text(chunk, "model"):
            self.model = model
        if chunk_usage := chunk_fields.usage(chunk):
            self.usage = usage(chunk_usage)
        for index, choice in chunk_fields.choices(chunk):
            if index != 0:
                continue  # the Responses API has one answer (n=1)
            delta = chunk_fields.delta(choice)
            if reasoning := chunk_fields.text(delta, "reasoning_content"):
                out += self._reasoning(reasoning)
            if content := chunk_fields.text(delta, "content"):
                out += self._text(content)
            for key, call, function in chunk_fields.tool_calls(delta):
                out += self._tool_call(key, call, function)
            if finish := chunk_fields.text(choice, "finish_reason"):
                self.finish_reason = finish
        return out

    def finish(self) -> list[dict]:
        """The closing events once the chat stream ended ([DONE])."""
        out = [] if self._started else self.start()
        out += self._close()
        response = self._response("completed")
        return out + [self._event(f"response.{response['status']}", response=response)]

    # -- items ------------------------------------------------------------------------
    def _open(self, kind: str, item: dict, key: Any = None) -> list[dict]:
        out = self._close()
        self._item = _Item(kind, len(self.output), item["id"], key)
        self.output.append(item)  # replaced by the finished item when it closes
        out.append(self._event("response.output_item.added",
                               output_index=self._item.index, item=item))
        return out

    def _ids(self) -> dict:
        assert self._item is not None
        return {"item_id": self._item.id, "output_index": self._item.index}

    def _reasoning(self, delta: str) -> list[dict]:
        out: list[dict] = []
        if self._item is None or self._item.kind != "reasoning":
            item_id = new_id("rs_")
            out += self._open("reasoning", reasoning_item(item_id, "", "in_progress"))
            out.append(self._event("response.reasoning_summary_part.added", **self._ids(),
                                   summary_index=0, part={"type": "summary_text",
                                                          "text": ""}))
        assert self._item is not None
        self._item.text += delta
        out.append(self._event("response.reasoning_summary_text.delta", **self._ids(),
                               summary_index=0, delta=delta))
        return out

    def _text(self, delta: str) -> list[dict]:
        out: list[dict] = []
        if self._item is None or self._item.kind != "message":
            item_id = new_id("msg_")
            out += self._open("message", message_item(item_id, None, "in_progress"))
            out.append(self._event("response.content_part.added", **self._ids(),
                                   content_index=0, part=text_part("")))
        assert self._item is not None
        self._item.text += delta
        out.append(self._event("response.output_text.delta", **self._ids(), content_index=0,
                               delta=delta, logprobs=[]))
        return out

    def _tool_call(self, key: int, call: dict, function: dict) -> list[dict]:
        out: list[dict] = []
        if self._item is None or self._item.kind != "function_call" or self._item.key != key:
            call_id = chunk_fields.text(call, "id") or new_id("call_")
            item = function_call_item(new_id("fc_"), call_id,
                                      chunk_fields.text(function, "name") or "", "",
                                      "in_progress")
            out += self._open("function_call", item, key)
            assert self._item is not None
            self._item.call_id, self._item.name = call_id, item["name"]
        item_state = self._item
        assert item_state is not None
        name = chunk_fields.text(function, "name")
        if name and not item_state.name:
            item_state.name = name
        if arguments := chunk_fields.text(function, "arguments"):
            item_state.text += arguments
            out.append(self._event("response.function_call_arguments.delta", **self._ids(),
                                   delta=arguments))
        return out

    def _close(self) -> list[dict]:
        """The `.done` events of the item being streamed, if any."""
        item, self._item = self._item, None
        if item is None:
            return []
        ids = {"item_id": item.id, "output_index": item.index}
        out: list[dict] = []
        if item.kind == "reasoning":
            part = {"type": "summary_text", "text": item.text}
            out += [self._event("response.reasoning_summary_text.done", **ids, summary_index=0,
                                text=item.text),
                    self._event("response.reasoning_summary_part.done", **ids,
                                summary_index=0, part=part)]
            done = reasoning_item(item.id, item.text)
        elif item.kind == "message":
            out += [self._event("response.output_text.done", **ids, content_index=0,
                                text=item.text, logprobs=[]),
                    self._event("response.content_part.done", **ids, content_index=0,
                                part=text_part(item.text))]
            done = message_item(item.id, item.text)
        else:
            arguments = item.text or "{}"
            out.append(self._event("response.function_call_arguments.done", **ids,
                                   name=item.name, arguments=arguments))
            done = function_call_item(item.id, item.call_id, item.name, arguments)
        self.output[item.index] = done
        out.append(self._event("response.output_item.done", output_index=item.index,
                               item=done))
        return out
