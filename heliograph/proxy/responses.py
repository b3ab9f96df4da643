"""`POST /v1/responses` and `/v1/responses/compact`: OpenAI's Responses API on every
provider, through the same pipeline as chat: auth, Helicone headers, fallback chain and
retries, the log record with usage and cost.

The body goes to the provider as the caller wrote it: OpenAI and Azure take it as it is,
every other adapter translates it to and from its chat API
(providers/responses_via_chat.py). So the wire format differs from chat only on the way
out: a stream is typed events (`event: response.output_text.delta`) ending with
`response.completed` and no [DONE], and what is logged for a stream is the final
response object that event carries (heliograph.formats.responses).

What the front adds is the gateway's store, for providers that keep no responses:
`prepare` puts the stored conversation in front of the input when `previous_response_id`
names a response the gateway kept (and stored items in place of `item_reference`s, as
the Vercel AI SDK sends earlier answers), and `keep` stores an answer (unless `store` is
false) before its last byte goes out, so a follow-up sent at once finds it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from heliograph.errors import BadRequest, GatewayError, ServiceUnavailable
from heliograph.formats.responses.events import ResponsesAccumulator, ResponsesStream
from heliograph.formats.responses.items import carried_over, input_items, listed, portable
from heliograph.proxy.fronts import OpenAIFront
from heliograph.store.stored_responses import StoredResponses

if TYPE_CHECKING:
    from heliograph.proxy.flow import Flow

log = logging.getLogger("heliograph.proxy")

# Item references resolved per request (more are left for the provider to refuse).
MAX_REFERENCES = 500


def _resolved(items: list[dict], found: dict[str, dict]) -> list[dict]:
    """Item references replaced by the stored items they name (reasoning left out, see
    items.portable)."""
    out = []
    for item in items:
        if item.get("type") == "item_reference" and item.get("id") in found:
            item = found[item["id"]]
            if item.get("type") == "reasoning":
                continue
            item = portable(item)
        out.append(item)
    return out


class ResponsesFront(OpenAIFront):
    name = "responses"

    def stream(self) -> ResponsesStream:
        return ResponsesStream()

    def accumulator(self, strip_usage: bool) -> ResponsesAccumulator:
        return ResponsesAccumulator()

    async def prepare(self, flow: Flow) -> None:
        """The stored conversation in place of previous_response_id, stored items in
        place of item references — when the gateway holds them. What it does not hold
        is left as it is: the provider's own (OpenAI keeps its responses), or a 400 from
        the translation."""
        previous = flow.body.get("previous_response_id")
        if previous is not None and (not isinstance(previous, str) or not previous):
            raise BadRequest("previous_response_id must be a non-empty string "
                             "(previous_response_id)", code="invalid_request")
        new_input = flow.body.get("input")
        references = [item["id"] for item in new_input if isinstance(item, dict)
                      and item.get("type") == "item_reference"
                      and isinstance(item.get("id"), str)] \
            if isinstance(new_input, list) else []
        if previous is None and not references:
            return
        store = StoredResponses(flow.gw.store)
        org = flow.principal.organization
        try:
            stored = await asyncio.to_thread(store.get, org, previous) if previous else None
            found = await asyncio.to_thread(store.items, org, references[:MAX_REFERENCES])
        except store.outage_errors() as exc:
            raise ServiceUnavailable(f"the gateway cannot read stored responses right now "
                                     f"({exc}); retry later",
                                     headers={"retry-after": "5"}) from None
        if stored is None and not found:
            return
        body = dict(flow.openai_body)
        items = input_items(new_input)
        if found:
            items = _resolved(items, found)
        if stored is not None:
            del body["previous_response_id"]
            items = carried_over(stored.input_items, stored.response.get("output") or []) \
                + items
        body["input"] = items
        flow.openai_body, flow.raw = body, None

    async def keep(self, flow: Flow, answer: object) -> None:
        if not isinstance(answer, dict) or answer.get("object") != "response" \
                or answer.get("status") not in ("completed", "incomplete") \
                or not isinstance(answer.get("id"), str) or flow.body.get("store") is False:
            return
        try:
            provider = flow.gw.registry.provider(flow.exchange.record["provider"] or "")
        except GatewayError:
            return
        if provider.stores_responses:
            return
        try:
            await asyncio.to_thread(StoredResponses(flow.gw.store).save,
                                    flow.principal.organization, answer,
                                    listed(input_items(flow.openai_body.get("input"))))
        except Exception as exc:  # the answer still goes out; only its storing failed
            log.warning("could not store response %s: %s", answer["id"], exc)


class CompactFront(ResponsesFront):
    """`/v1/responses/compact`: a JSON answer (`response.compaction`), never stored."""

    async def keep(self, flow: Flow, answer: object) -> None:
        pass


RESPONSES = ResponsesFront()
COMPACT = CompactFront()
