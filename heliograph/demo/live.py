"""`heliograph demo --live`: a steady trickle of real requests through a running gateway,
with Helicone headers (users, sessions, properties), some streams and some cache-enabled.

The models are ones the gateway routes to the built-in fake upstream when it is configured
against it (README, `heliograph fake-upstream`); against real providers they are real
calls. A few requests ask the fake upstream for an error (`x-fake-behavior`, ignored by real
providers) so the log shows failures too.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from heliograph.demo import templates as T

LIVE_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "claude-3-5-haiku-20241022",
               "gemini-2.0-flash", "mistral-small-latest")
PRINT_EVERY = 10


class _Counts:
    def __init__(self) -> None:
        self.sent = self.ok = self.errors = self.cache_hits = 0


def _headers(rng: random.Random, users: list[str], session: dict[str, Any]) -> dict[str, str]:
    env = rng.choices([v for v, _ in T.ENVIRONMENTS], [w for _, w in T.ENVIRONMENTS])[0]
    headers = {"Helicone-User-Id": rng.choice(users), "Helicone-Property-Environment": env,
               "Helicone-Property-Source": "demo-live"}
    if session["left"] > 0:
        session["left"] -= 1
        headers.update({"Helicone-Session-Id": session["id"],
                        "Helicone-Session-Path": session["paths"][session["step"] % len(
                            session["paths"])],
                        "Helicone-Session-Name": session["name"],
                        "Helicone-Property-Workflow": session["workflow"]})
        session["step"] += 1
    else:
        headers["Helicone-Property-Feature"] = rng.choices([v for v, _ in T.FEATURES],
                                                           [w for _, w in T.FEATURES])[0]
    return headers


def _new_session(rng: random.Random) -> dict[str, Any]:
    workflow = rng.choices(T.WORKFLOWS, weights=[w[1] for w in T.WORKFLOWS])[0]
    name = rng.choice(workflow[3]).format(topic=rng.choice(T.TOPICS), n=rng.randint(1000, 99999))
    return {"id": str(uuid.uuid4()), "workflow": workflow[0], "paths": workflow[2],
            "name": name, "step": 0, "left": rng.randint(2, len(workflow[2]))}


def _send_one(client, rng: random.Random, bodies: T.Bodies, headers: dict[str, str],
              counts: _Counts) -> None:
    import openai

    model = rng.choice(LIVE_MODELS)
    stream = rng.random() < 0.3
    if rng.random() < 0.25:
        headers["Helicone-Cache-Enabled"] = "true"
    if rng.random() < 0.05:
        headers["x-fake-behavior"] = rng.choice(("status-429", "status-500", "status-502"))
    # A small pool of conversations: cache-enabled requests repeat and hit.
    messages = bodies.openai_request(rng.randrange(8), model, False)["messages"]
    counts.sent += 1
    try:
        if stream:
            chunks = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, stream=True, extra_headers=headers)
            hit = chunks.headers.get("helicone-cache") == "HIT"
            for _ in chunks.parse():
                pass
        else:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, extra_headers=headers)
            raw.parse()
            hit = raw.headers.get("helicone-cache") == "HIT"
        counts.ok += 1
        counts.cache_hits += hit
    except openai.APIError:
        counts.errors += 1


def run(url: str, key: str, rate: float, duration: float | None, seed: int | None,
        echo, every: int = PRINT_EVERY) -> _Counts:
    """Send `rate` requests a second until `duration` seconds passed (or Ctrl-C)."""
    import openai

    rng = random.Random(seed)
    users = T.user_ids(40, rng)
    bodies = T.Bodies(rng, pool=8)
    client = openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key=key, max_retries=0,
                           timeout=30)
    counts = _Counts()
    session: dict[str, Any] = {"left": 0}
    t0 = time.monotonic()
    next_at = t0
    echo(f"sending {rate:g} requests/s to {url}" +
         (f" for {duration:g}s" if duration is not None else " (Ctrl-C to stop)"))
    try:
        while duration is None or time.monotonic() - t0 < duration:
            if session["left"] <= 0 and rng.random() < 0.5:
                session = _new_session(rng)
            _send_one(client, rng, bodies, _headers(rng, users, session), counts)
            if counts.sent % every == 0:
                echo(f"{counts.sent} sent, {counts.ok} ok, {counts.errors} errors, "
                     f"{counts.cache_hits} cache hits, "
                     f"{counts.sent / max(time.monotonic() - t0, 1e-9):.1f} requests/s")
            # A fixed schedule: a slow answer is caught up on, not added to every gap.
            next_at = max(next_at + 1.0 / rate, time.monotonic() - 1.0)
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    echo(f"done: {counts.sent} sent, {counts.ok} ok, {counts.errors} errors, "
         f"{counts.cache_hits} cache hits in {time.monotonic() - t0:.1f}s")
    return counts
