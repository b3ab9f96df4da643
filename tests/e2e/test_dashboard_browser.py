"""The dashboard in a real browser (Playwright driving Debian's chromium) against a real
gateway, on each store: sign in, a request made with the openai SDK appears, filter by a
property, open it and read prompt and response, markup stays inert, every page renders
with no console error and no request leaving 127.0.0.1, sign-out, organizations apart."""

from __future__ import annotations

import uuid

import pytest
from servers import ADMIN_KEY

pytest.importorskip("playwright.sync_api")  # the chromium fixture drives it

PAGES = ["/dashboard/", "/dashboard/requests", "/dashboard/users", "/dashboard/properties",
         "/dashboard/sessions", "/dashboard/cache", "/dashboard/ratelimits",
         "/dashboard/alerts", "/dashboard/budgets", "/dashboard/keys"]
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'


class Tab:
    """One browser context (its own cookies): every console error and every URL requested."""

    def __init__(self, chromium, origin: str):
        self.origin = origin
        self.context = chromium.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda r: self.urls.append(r.url))

    def sign_in(self, key: str) -> None:
        self.page.goto(self.origin + "/dashboard/login")
        self.page.fill("#key", key)
        self.page.click("#sign-in")
        self.page.wait_for_url(self.origin + "/dashboard/")

    def goto(self, path: str) -> None:
        self.page.goto(self.origin + path)
        self.page.wait_for_load_state("networkidle")

    def off_origin(self) -> list[str]:
        return [u for u in self.urls if not u.startswith(("http://127.0.0.1:", "data:"))]

    def close(self) -> None:
        self.context.close()


def test_sign_in_see_filter_open_and_sign_out(chromium, gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": f"Where is {tag}? {XSS}"}],
        extra_headers={"Helicone-Property-Workflow": f"wf-{tag}",
                       "Helicone-User-Id": f"user-{tag}"})
    request_id = raw.headers["helicone-id"]
    answer = raw.parse().choices[0].message.content
    gateway.record(request_id)
    tab = Tab(chromium, gateway.url)
    try:
        tab.sign_in(ADMIN_KEY)
        tab.goto("/dashboard/requests")
        tab.page.fill("#add-property", "Workflow")
        tab.page.fill("#add-value", f"wf-{tag}")
        tab.page.click("#apply-filters")
        tab.page.wait_for_load_state("networkidle")
        assert f"property.Workflow=wf-{tag}" in tab.page.url  # the view is a shareable URL
        rows = tab.page.locator("#requests-table tbody tr")
        assert rows.count() == 1
        rows.first.locator("a.open-request").click()
        tab.page.wait_for_url(f"**/dashboard/requests/{request_id}")
        conversation = tab.page.locator("#conversation").inner_text()
        assert f"Where is {tag}?" in conversation and answer in conversation
        assert XSS in conversation  # shown as text ...
        assert tab.page.evaluate("window.__xss") is None  # ... and never run
        assert tab.page.locator("#conversation img").count() == 0
        tab.page.click("#sign-out")
        tab.page.wait_for_url("**/dashboard/login")
        tab.goto("/dashboard/requests")
        assert "/dashboard/login" in tab.page.url
        assert tab.errors == [] and tab.off_origin() == []
    finally:
        tab.close()


def test_every_page_renders_without_console_errors_or_outside_requests(chromium, gateway,
                                                                        openai_client):
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "fill the pages"}],
        extra_headers={"Helicone-User-Id": "pages-user", "Helicone-Property-Env": "test",
                       "Helicone-Session-Id": "pages-session", "Helicone-Session-Path": "/a/b",
                       "Helicone-Cache-Enabled": "true"})
    tab = Tab(chromium, gateway.url)
    try:
        tab.sign_in(ADMIN_KEY)
        for path in PAGES + ["/dashboard/sessions/pages-session", "/dashboard/users/pages-user"]:
            tab.goto(path)
            assert tab.page.locator("main").count() == 1, path
            assert tab.errors == [], (path, tab.errors)
        charts = tab.page.goto(gateway.url + "/dashboard/?period=30d")
        assert charts is not None and charts.status == 200
        tab.page.wait_for_selector(".chart .main-svg")  # plotly drew from the served bundle
        assert tab.errors == [] and tab.off_origin() == []
    finally:
        tab.close()


def test_another_organizations_key_sees_none_of_it(chromium, gateway, openai_client):
    tag = uuid.uuid4().hex[:8]
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"private {tag}"}],
        extra_headers={"Helicone-User-Id": f"private-{tag}"})
    request_id = raw.headers["helicone-id"]
    gateway.record(request_id)
    created = gateway.cli("keys", "create", "--name", f"other-{tag}", "--org",
                          f"elsewhere-{uuid.uuid4().hex[:6]}")
    assert created.returncode == 0, created.stderr
    other_key = created.stdout.strip().splitlines()[-1]
    tab = Tab(chromium, gateway.url)
    try:
        tab.sign_in(other_key)
        tab.goto("/dashboard/requests")
        assert request_id not in tab.page.content()
        tab.goto("/dashboard/users?period=all")
        assert f"private-{tag}" not in tab.page.content()
        response = tab.page.goto(gateway.url + f"/dashboard/requests/{request_id}")
        assert response is not None and response.status == 404
        assert tab.page.locator("a[href='/dashboard/keys']").count() == 0  # not an admin
    finally:
        tab.close()
