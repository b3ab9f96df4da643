"""`POST /v1/responses/compact` for models that only speak chat: the conversation is
summarised by the model itself, and the answer is OpenAI's compaction object — the
conversation's user messages followed by one `compaction` item holding the summary
(items.compaction_item), which later turns send back as input.
"""

from __future__ import annotations

import time

from heliograph.formats.responses.answer_from_chat import usage
from heliograph.formats.responses.items import compaction_item, input_items, listed, new_id
from heliograph.formats.responses.request_to_chat import to_chat

SUMMARY_INSTRUCTIONS = (
    "Summarise the conversation above so that it can continue from the summary alone: "
    "keep every fact, decision, open question, tool result and piece of the user's intent "
    "that later turns may need. Answer with the summary only.")


def to_chat_request(body: dict, provider: str) -> dict:
    """The chat request asking the model for the summary."""
    request = {"model": body["model"], "input": input_items(body.get("input")),
               "instructions": body.get("instructions")}
    chat = to_chat(request, provider)
    chat["messages"].append({"role": "user", "content": SUMMARY_INSTRUCTIONS})
    return chat


def from_chat(completion: dict, body: dict) -> dict:
    choices = completion.get("choices") or [{}]
    message = (choices[0] if isinstance(choices[0], dict) else {}).get("message") or {}
    summary = message.get("content") if isinstance(message.get("content"), str) else ""
    users = [item for item in input_items(body.get("input"))
             if (item.get("type") or "message") == "message" and item.get("role") == "user"]
    return {"id": new_id("resp_"), "object": "response.compaction",
            "created_at": int(completion.get("created") or time.time()),
            "output": listed(users) + [compaction_item(summary or "")],
            "usage": usage(completion.get("usage"))}
