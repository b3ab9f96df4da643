"""What demo traffic is made of: models and their providers, users, workflows with session
paths, property values, and chat bodies. Everything here is plain data built once, so the
generator only picks from it per record (cheap) instead of composing text per record."""

from __future__ import annotations

import random

# (provider, model, weight, wire format of the caller: "openai" or "anthropic",
#  sends x-ratelimit-* headers on every answer)
MODELS: tuple[tuple[str, str, float, str, bool], ...] = (
    ("openai", "gpt-4o-mini", 30, "openai", True),
    ("openai", "gpt-4o", 12, "openai", True),
    ("openai", "gpt-4.1-mini", 8, "openai", True),
    ("openai", "gpt-4.1", 4, "openai", True),
    ("openai", "o3-mini", 3, "openai", True),
    ("anthropic", "claude-3-5-haiku-20241022", 5, "anthropic", False),
    ("anthropic", "claude-sonnet-4-20250514", 7, "anthropic", False),
    ("gemini", "gemini-2.0-flash", 8, "openai", False),
    ("gemini", "gemini-2.5-pro", 3, "openai", False),
    ("groq", "llama-3.3-70b-versatile", 4, "openai", True),
    ("mistral", "mistral-small-latest", 3, "openai", False),
    ("deepseek", "deepseek-chat", 3, "openai", False),
    ("xai", "grok-3-mini", 2, "openai", False),
    ("ollama", "llama3.2", 2, "openai", False),   # a local model: no list price
)
# Where a failing model falls back to (Helicone-Fallback-Model), by provider.
FALLBACKS = {"openai": ("anthropic", "claude-3-5-haiku-20241022"),
             "anthropic": ("openai", "gpt-4o-mini"),
             "gemini": ("openai", "gpt-4o-mini"),
             "groq": ("openai", "gpt-4o-mini"),
             "mistral": ("openai", "gpt-4o-mini"),
             "deepseek": ("openai", "gpt-4o-mini"),
             "xai": ("openai", "gpt-4o-mini"),
             "ollama": ("openai", "gpt-4o-mini")}

# Workflows: (name, weight, session paths in call order, session name templates).
WORKFLOWS: tuple[tuple[str, float, tuple[str, ...], tuple[str, ...]], ...] = (
    ("research-agent", 5, ("/plan", "/plan/search", "/plan/search", "/plan/search/summarize",
                           "/plan/critique", "/answer"),
     ("Research: {topic}", "Deep dive: {topic}")),
    ("support-triage", 8, ("/classify", "/classify/lookup", "/draft-reply", "/draft-reply/tone"),
     ("Ticket #{n}", "Support case {n}")),
    ("code-review", 3, ("/diff", "/diff/file", "/diff/file", "/diff/summary"),
     ("PR #{n} review",)),
    ("chat-assistant", 10, ("/chat", "/chat", "/chat", "/chat/tools", "/chat"),
     ("Chat about {topic}",)),
    ("extraction", 4, ("/extract", "/extract/validate"), ("Invoice batch {n}",)),
    ("summarize", 4, ("/chunk", "/chunk/summarize", "/chunk/summarize", "/merge"),
     ("Summary of {topic}",)),
)
ENVIRONMENTS = (("production", 85), ("staging", 12), ("development", 3))
FEATURES = (("search", 30), ("draft-reply", 20), ("autocomplete", 15), ("insights", 10),
            ("onboarding", 5), ("export", 2))
TOPICS = ("solar storage", "EU AI Act", "Kubernetes autoscaling", "coffee supply chains",
          "Lisbon trip", "quarterly churn", "Postgres vacuum", "battery recycling",
          "remote onboarding", "GDPR requests", "vector search", "Q3 pricing")

# ASCII only: --live sends these in HTTP headers (Helicone-User-Id, -Session-Name).
_FIRST = ("alice", "bob", "carla", "dmitri", "emma", "farid", "grace", "hiro", "ines", "jon",
          "kemal", "lena", "mateo", "nadia", "omar", "priya", "quinn", "rosa", "sven", "tara",
          "umar", "vera", "wei", "ximena", "yusuf", "zoe")
_LAST = ("nguyen", "smith", "garcia", "kowalski", "okafor", "tanaka", "mueller", "silva",
         "haddad", "larsen", "moreau", "patel", "rossi", "kim", "ivanova", "brennan")
_DOMAINS = ("acme.io", "globex.com", "initech.dev", "umbrella.org", "hooli.xyz")


def user_ids(count: int, rng: random.Random) -> list[str]:
    """`count` distinct, readable user ids ("grace.tanaka@hooli.xyz", then numbered)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        name = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
        if name in seen:
            name = f"{name}{len(out)}"
        seen.add(name)
        out.append(f"{name}@{rng.choice(_DOMAINS)}")
    return out


_SYSTEM = (
    "You are a helpful assistant for {company}. Answer concisely, cite sources when you use "
    "them, and ask a clarifying question when the request is ambiguous. Never invent order "
    "numbers, prices or policies; if you do not know, say so and offer to escalate.",
    "You are a senior software engineer reviewing code. Point out bugs, security issues and "
    "unclear names first, style last. Quote the exact lines you refer to.",
    "You extract structured data from documents. Reply with JSON only, matching the schema "
    "the user gives. Use null for fields that are missing; never guess.",
    "You are a research agent. Break the question into steps, decide which searches to run, "
    "and keep a short list of open questions. Be explicit about uncertainty.",
)
_QUESTIONS = (
    "Can you summarise the main trade-offs of {topic} for a non-technical audience? Keep it "
    "under 200 words and end with one recommendation.",
    "A customer writes: \"I was charged twice for my subscription this month and the app "
    "still says my plan expired. Order 88231. Please fix this today.\" Draft a reply.",
    "Review this function and tell me what could go wrong in production:\n\n"
    "def load(path):\n    data = open(path).read()\n    return json.loads(data)['items']\n",
    "Extract vendor, invoice_number, date, currency and total from this text: \"INVOICE "
    "#A-10293  Globex Ltd, 14 Mar 2025. Consulting services 12h @ 150.00 EUR. Total due: "
    "1,800.00 EUR within 30 days.\"",
    "What should I search for first to find recent, credible numbers on {topic}? List three "
    "queries and why each one helps.",
    "Rewrite this paragraph so it is friendlier but keeps every fact: \"Your request cannot "
    "be processed. Contact support. Reference: {topic}.\"",
)
_ANSWERS = (
    "Here is a short overview of {topic}.\n\n**What it is.** In short, it is a way to trade "
    "some upfront cost for lower running costs later. **Benefits:** predictable spending, "
    "less manual work, and clearer reporting for the team. **Costs:** an initial migration, "
    "training, and a few months where both the old and the new process run side by side.\n\n"
    "**Recommendation:** start with one team for a quarter, measure the time saved, and only "
    "then roll it out more widely.",
    "Hi there,\n\nThank you for reaching out, and I am sorry about the double charge. I can "
    "see two payments for order 88231 this month. I have refunded the duplicate; it should "
    "appear on your statement within 3–5 business days. Your plan is active again — if the "
    "app still shows it as expired, please sign out and back in.\n\nBest regards,\nSupport",
    "A few things could go wrong:\n\n1. `open(path)` is never closed; use `with open(path) "
    "as f:`.\n2. A missing `items` key raises `KeyError` with no context about which file "
    "was bad.\n3. Large files are read into memory at once.\n4. The encoding is the platform "
    "default; pass `encoding=\"utf-8\"` explicitly.",
    "{\"vendor\": \"Globex Ltd\", \"invoice_number\": \"A-10293\", \"date\": \"2025-03-14\", "
    "\"currency\": \"EUR\", \"total\": 1800.00}",
    "1. \"{topic} statistics 2025\" – recent aggregate numbers.\n2. \"{topic} peer reviewed "
    "study\" – methodology you can check.\n3. \"{topic} industry report pdf\" – vendor data, "
    "to compare against the first two (expect some optimism).",
)
_COMPANIES = ("Acme", "Globex", "Initech", "Hooli", "Umbrella")
# Retrieved passages some requests carry (RAG): what makes real prompts long.
_CONTEXT = (
    "[doc 1] Refund policy (updated 2025-01): duplicate charges are refunded automatically "
    "within 5 business days once confirmed by billing. Agents may issue a manual refund up "
    "to 200 EUR without approval; above that, escalate to a team lead with the order id.",
    "[doc 2] Plan status is cached by the mobile app for up to 24 hours. Signing out and in "
    "again forces a refresh. Web sessions read the status live from the billing service.",
    "[doc 3] Incident 2025-03-02: the payment provider retried webhook deliveries for 40 "
    "minutes, which created duplicate invoices for about 1.2% of renewals in that window.",
    "[doc 4] Internal style guide: answer in the customer's language, use their first name "
    "once, avoid blame, and always end with a concrete next step and a time frame.",
    "[doc 5] Search results: (a) industry survey 2024, n=1,850, median adoption 34%; "
    "(b) government statistics portal, quarterly series since 2012; (c) vendor white paper "
    "claiming 60% savings, no methodology section.",
)


POOL_SIZE = 64   # conversations a demo's request bodies are drawn from


def _conversations(rng: random.Random, count: int) -> list[tuple[list[dict], str]]:
    """(messages, answer text) pairs of realistic length: system prompt, a question, and
    sometimes an earlier turn, so request bodies land around 1-3 KB."""
    out = []
    for _ in range(count):
        topic = rng.choice(TOPICS)
        messages = [{"role": "system",
                     "content": rng.choice(_SYSTEM).format(company=rng.choice(_COMPANIES))}]
        if rng.random() < 0.4:
            messages.append({"role": "user", "content": rng.choice(_QUESTIONS).replace("{topic}", topic)})
            messages.append({"role": "assistant",
                             "content": rng.choice(_ANSWERS).replace("{topic}", topic)})
        question = rng.choice(_QUESTIONS).replace("{topic}", topic)
        if rng.random() < 0.6:
            docs = rng.sample(_CONTEXT, rng.randint(2, len(_CONTEXT)))
            question = "Context:\n" + "\n\n".join(docs) + "\n\nQuestion: " + question
        messages.append({"role": "user", "content": question})
        out.append((messages, rng.choice(_ANSWERS).replace("{topic}", topic)))
    return out


class Bodies:
    """Request/response bodies in the shapes the gateway logs, from a fixed pool of
    conversations; per record only the envelope (model, id, usage) is new."""

    def __init__(self, rng: random.Random, pool: int = POOL_SIZE) -> None:
        self.pool = _conversations(rng, pool)

    def openai_request(self, i: int, model: str, stream: bool) -> dict:
        messages, _ = self.pool[i % len(self.pool)]
        body = {"model": model, "messages": messages, "temperature": 0.7}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def openai_response(self, i: int, rid: str, created: int, model: str, usage: dict,
                        stream: bool) -> dict:
        _, answer = self.pool[i % len(self.pool)]
        body = {"id": f"chatcmpl-{rid[:24]}", "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer}}],
                "usage": usage}
        if stream:
            body["stream"] = True
        return body

    def anthropic_request(self, i: int, model: str, stream: bool) -> dict:
        messages, _ = self.pool[i % len(self.pool)]
        body = {"model": model, "max_tokens": 1024, "system": messages[0]["content"],
                "messages": messages[1:]}
        if stream:
            body["stream"] = True
        return body

    def anthropic_response(self, i: int, rid: str, model: str, usage: dict) -> dict:
        _, answer = self.pool[i % len(self.pool)]
        return {"id": f"msg_{rid[:24]}", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": usage["prompt_tokens"]
                          - usage["prompt_tokens_details"]["cached_tokens"],
                          "output_tokens": usage["completion_tokens"],
                          "cache_read_input_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                          "cache_creation_input_tokens": 0}}


# Upstream failures: (status, weight, provider's message, sent as the error body's message).
ERRORS: tuple[tuple[int, float, str], ...] = (
    (429, 45, "Rate limit reached for {model} on tokens per min (TPM): Limit 200000, "
              "Used 199421, Requested 1873. Please try again in 388ms."),
    (500, 20, "The server had an error while processing your request. Sorry about that!"),
    (502, 15, "upstream connect error or disconnect/reset before headers"),
    (400, 20, "This model's maximum context length is 128000 tokens. However, your messages "
              "resulted in 131072 tokens. Please reduce the length of the messages."),
)
