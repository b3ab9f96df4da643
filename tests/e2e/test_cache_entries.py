"""The Cache page's most-hit entries and GET /api/v1/cache/entries, through a real gateway
on each store: requests made with the openai SDK fill and hit two entries, the API and the
page (Playwright driving Debian's chromium) list them in order with their hits, savings,
the request that filled each and a link to its hits; a prompt holding markup stays inert
text, and another organization sees none of it."""

from __future__ import annotations

import time
import uuid

import openai
import pytest
from servers import ADMIN_KEY

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def ask(client, content: str):
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}],
        extra_headers={"Helicone-Cache-Enabled": "true"})


def fill_and_hit(gateway, client, key: str, content: str, hits: int) -> tuple[dict, list]:
    """Misses until the entry is stored, then `hits` hits. The entry is written after the
    answer, so a request before it lands is another miss; the first miss whose write
    lands fills the entry (only if absent), which need not be the first sent: two misses
    on different workers or pool connections race. The fill is the miss the hits name."""
    first = ask(client, content)
    assert first.headers["helicone-cache"] == "MISS"
    misses = [first.headers["helicone-id"]]
    served: list[str] = []
    deadline = time.monotonic() + 10
    while len(served) < hits:
        raw = ask(client, content)
        if raw.headers["helicone-cache"] == "HIT":
            served.append(raw.headers["helicone-id"])
        else:
            assert time.monotonic() < deadline, "the entry was never stored"
            misses.append(raw.headers["helicone-id"])
            time.sleep(0.05)
    hit_records = [gateway.record(request_id, key) for request_id in served]
    filled_by = hit_records[0]["cache_reference_id"]
    assert filled_by in misses, (filled_by, misses)
    return gateway.record(filled_by, key), hit_records


@pytest.fixture
def organization(gateway):
    """A key of a fresh organization (the shared gateway's other tests cache too) and
    an openai client with it."""
    name = f"cache-org-{uuid.uuid4().hex[:8]}"
    created = gateway.cli("keys", "create", "--name", name, "--org", name)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    return key, openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def two_entries(gateway, organization):
    key, client = organization
    tag = uuid.uuid4().hex[:8]
    popular = fill_and_hit(gateway, client, key, f"popular {tag} {XSS}", 3)
    other = fill_and_hit(gateway, client, key, f"other {tag}", 2)
    return key, tag, popular, other


def test_api_lists_entries_by_hits_with_savings_and_fill(gateway, two_entries):
    key, tag, (fill, hits), (other_fill, other_hits) = two_entries
    status, body = gateway.api("/api/v1/cache/entries", key)
    assert status == 200, body
    entries = body["data"]
    assert [e["hits"] for e in entries] == [3, 2]
    first, second = entries
    assert first["cache_entry"] == fill["cache_entry"] == hits[0]["cache_entry"]
    assert {h["cache_entry"] for h in hits} == {first["cache_entry"]}
    assert {h["cache_reference_id"] for h in hits} == {fill["id"]}   # as Helicone's
    assert second["cache_entry"] == other_fill["cache_entry"] != first["cache_entry"]
    assert first["saved_usd"] == pytest.approx(sum(h["cost_saved_usd"] for h in hits))
    assert first["saved_usd"] == pytest.approx(3 * fill["cost_usd"])
    assert second["saved_usd"] == pytest.approx(2 * other_fill["cost_usd"]) and fill["cost_usd"] > 0
    assert first["filled_by"] == fill["id"] and second["filled_by"] == other_fill["id"]
    # Never below zero: on a loaded machine a hit can answer slower than the fill did.
    assert first["time_saved_ms"] == pytest.approx(
        max(0.0, sum(fill["latency_ms"] - h["latency_ms"] for h in hits)))
    assert first["model"] == "gpt-4o-mini"
    assert first["prompt_preview"].startswith(f"popular {tag} <script>")
    assert first["first_hit_at"] == hits[0]["created_at"]
    assert first["last_hit_at"] == hits[-1]["created_at"]
    assert second["last_hit_at"] == other_hits[-1]["created_at"]
    # The query API's filters apply: a window after the hits, the entry's own records.
    status, later = gateway.api("/api/v1/cache/entries?since=2999-01-01T00:00:00Z", key)
    assert status == 200 and later["data"] == []
    status, one = gateway.api("/api/v1/cache/entries?limit=1", key)
    assert status == 200 and [e["cache_entry"] for e in one["data"]] == [first["cache_entry"]]
    status, listed = gateway.api(
        f"/api/v1/requests?cache_entry={first['cache_entry']}&cache=hit", key)
    assert status == 200 and sorted(r["id"] for r in listed["data"]) == sorted(
        h["id"] for h in hits)
    for bad in ("limit=0", "limit=x", "colour=red"):
        status, error = gateway.api(f"/api/v1/cache/entries?{bad}", key)
        assert status == 400 and error["error"]["message"], bad
    # Another organization's key sees none of it.
    status, elsewhere = gateway.api("/api/v1/cache/entries?limit=100", ADMIN_KEY)
    assert status == 200
    assert not {e["cache_entry"] for e in elsewhere["data"]} & {first["cache_entry"],
                                                                 second["cache_entry"]}
    status, none = gateway.api(f"/api/v1/requests?cache_entry={first['cache_entry']}",
                               ADMIN_KEY)
    assert status == 200 and none["data"] == []


def sign_in(chromium, origin: str, key: str):
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(origin + "/dashboard/login")
    page.fill("#key", key)
    page.click("#sign-in")
    page.wait_for_url(origin + "/dashboard/")
    return context, page, errors


def test_cache_page_lists_most_hit_entries_in_a_browser(chromium, gateway, two_entries):
    key, tag, (fill, hits), (other_fill, _) = two_entries
    context, page, errors = sign_in(chromium, gateway.url, key)
    try:
        page.goto(gateway.url + "/dashboard/cache?period=24h")
        rows = page.locator("#cache-entries tr.cache-entry")
        assert rows.count() == 2
        assert [rows.nth(i).get_attribute("data-entry") for i in range(2)] == [
            fill["cache_entry"], other_fill["cache_entry"]]
        assert [rows.nth(i).locator("td.hits").inner_text() for i in range(2)] == ["3", "2"]
        saved = rows.first.locator("td.saved").inner_text()
        assert saved.startswith("$") and saved != "$0"
        prompt = rows.first.locator("td.prompt").inner_text()
        assert prompt.startswith(f"popular {tag} <script>window.__xss=1</script>")  # text ...
        assert page.evaluate("window.__xss") is None                     # ... never run
        assert page.locator("#cache-entries script, #cache-entries img").count() == 0
        # Its hits: the Requests page filtered to them, in the same period.
        rows.first.locator("a.entry-hits").click()
        page.wait_for_url("**/dashboard/requests?**")
        assert f"cache_entry={fill['cache_entry']}" in page.url and "period=24h" in page.url
        listed = page.locator("#requests-table a.open-request")
        assert sorted(a.get_attribute("href").rsplit("/", 1)[-1]
                      for a in listed.all()) == sorted(h["id"] for h in hits)
        # The request that filled it.
        page.go_back()
        page.locator("#cache-entries tr.cache-entry").first.locator("a.filled-by").click()
        page.wait_for_url(f"**/dashboard/requests/{fill['id']}")
        assert f"popular {tag}" in page.locator("#conversation").inner_text()
        assert page.evaluate("window.__xss") is None
        assert errors == []
    finally:
        context.close()
    # Another organization's key: none of these entries.
    context, page, errors = sign_in(chromium, gateway.url, ADMIN_KEY)
    try:
        page.goto(gateway.url + "/dashboard/cache?period=24h")
        html = page.content()
        assert tag not in html and fill["cache_entry"] not in html
        assert errors == []
    finally:
        context.close()
