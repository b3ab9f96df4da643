"""Delivery: sends every queued notice, retrying failures with backoff.

Run by the alerts job (job.py; deployment scope: one sender across replicas, so a
notice is sent once). Each pass:
  1. turns the webhook feed (records the writer stored for organizations with
     per-request webhooks, store/_webhook_feed.py) into deliveries — filter, sample,
     payload — and removes those feed rows, in one transaction: a killed host leaves the
     feed rows to the next pass, so no stored request is ever skipped;
  2. claims the deliveries that are due (a compare-and-set, so two senders overlapping
     during a lock handover never both send one) and sends them all at once, each
     bounded by a timeout: one dead receiver delays nobody. A failure is recorded (attempts, last_error) and retried
     after 2, 4, 8 ... seconds (at most RETRY_MAX_S apart), MAX_ATTEMPTS times in all.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from heliograph.alerts import repo
from heliograph.alerts.channels import DeliveryError, SmtpSettings, deliver
from heliograph.alerts.model import RequestWebhook, record_matches

if TYPE_CHECKING:  # imported when there is something to send (see channels.py)
    import aiohttp

log = logging.getLogger("heliograph.alerts")

MAX_ATTEMPTS = 15
RETRY_MAX_S = 600.0
FEED_BATCH = 500
# A claimed delivery is due again after this long if its sender died before recording
# the outcome (sends time out long before).
CLAIM_LEASE_S = 60.0
SEND_BATCH = 100
# What a per-request webhook carries (PRODUCT.md), bodies only when asked.
REQUEST_FIELDS = ("id", "created_at", "organization", "key_id", "model", "model_used",
                  "provider", "path", "status", "error", "latency_ms", "ttft_ms",
                  "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                  "cost_usd", "cost_known", "user_id", "properties", "session_id",
                  "session_path", "session_name", "cache")


def retry_delay(attempts: int) -> float:
    return min(2.0 ** attempts, RETRY_MAX_S)


def sampled(hook: RequestWebhook, request_id: str) -> bool:
    """The same request always gets the same answer for a hook (a retry after a kill
    must not flip it); sample_rate percent of requests pass."""
    if hook.sample_rate >= 100:
        return True
    # Only for sampled hooks: hashlib maps OpenSSL's libcrypto (channels.sign says why).
    import hashlib

    digest = hashlib.sha256(f"{hook.id}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < hook.sample_rate * 100


def request_payload(hook: RequestWebhook, record: dict) -> dict:
    request = {key: record.get(key) for key in REQUEST_FIELDS}
    if hook.include_bodies:
        request["request"] = record.get("request")
        request["response"] = record.get("response")
    return {"json": {"type": "request.completed", "webhook_id": hook.id,
                     "request": request}}


def drain_feed(store, analytics, limit: int = FEED_BATCH) -> int:
    """Feed rows → deliveries. Returns how many feed rows were consumed."""
    with store.transaction() as cur:
        rows = store.execute(cur, "SELECT organization, request_id FROM webhook_feed"
                                  " LIMIT ?", (limit,)).fetchall()
    if not rows:
        return 0
    hooks: dict[str, list[RequestWebhook]] = {}
    for hook in repo.list_webhooks(store):
        hooks.setdefault(hook.organization, []).append(hook)
    now = time.time()
    queued: list[tuple[str, str, list[tuple[dict, Any]]]] = []
    for organization, request_id in rows:
        wanted = [h for h in hooks.get(organization, ()) if sampled(h, request_id)]
        record = analytics.get_request(organization, request_id) if wanted else None
        if record is not None:
            for hook in wanted:
                if record_matches(hook.filter, record):
                    channel = {"type": "webhook", "url": hook.url, "secret": hook.secret}
                    queued.append((organization, hook.id,
                                   [(channel, request_payload(hook, record))]))
    with store.transaction(write=True) as cur:
        for organization, hook_id, notices in queued:
            repo.enqueue(store, cur, organization, hook_id, notices, now)
        store.executemany(cur, "DELETE FROM webhook_feed WHERE organization = ?"
                               " AND request_id = ?", [tuple(r) for r in rows])
    return len(rows)


async def _send(session: aiohttp.ClientSession, smtp: SmtpSettings, item: dict
                ) -> str | None:
    """None when delivered, else why not."""
    try:
        await deliver(session, smtp, item["channel"], item["payload"])
    except DeliveryError as exc:
        return str(exc)
    except Exception as exc:  # a bug must still count as a failed attempt, not loop
        log.exception("delivery %s failed unexpectedly", item["id"])
        return f"{type(exc).__name__}: {exc}"
    return None


async def _send_all(smtp: SmtpSettings, due: list[dict]) -> list[str | None]:
    import asyncio

    import aiohttp

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(_send(session, smtp, item) for item in due)))


def send_due(store, smtp: SmtpSettings, now: float | None = None) -> int:
    """Send what is due; record each outcome. Returns how many were attempted."""
    now = time.time() if now is None else now
    claimed = time.time()
    due = [taken for item in repo.due_deliveries(store, now, SEND_BATCH)
           if (taken := repo.claim(store, item, claimed, CLAIM_LEASE_S)) is not None]
    if not due:
        return 0
    # asyncio (with ssl, ~3 MB) only once there is something to send: the host runs
    # this job every few seconds whether or not any alert or webhook is configured.
    import asyncio

    errors = asyncio.run(_send_all(smtp, due))
    done = time.time()
    for item, error in zip(due, errors):
        attempts = item["attempts"]
        next_at = None
        if error is not None:
            if attempts < MAX_ATTEMPTS:
                next_at = done + retry_delay(attempts)
            log.warning("delivery %s (%s) failed, attempt %d: %s", item["id"],
                        item["channel"]["type"], attempts, error)
        repo.finish_delivery(store, item["id"], error is None, error, attempts, next_at,
                             done)
    return len(due)
