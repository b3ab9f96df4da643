"""The dashboard over HTTP, in-process: sign-in and sessions, CSRF, organization
isolation, read-only keys, escaping, filters in the URL, every page rendering."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import ADMIN_KEY, GATEWAY_URL, create_key, httpx

pytestmark = pytest.mark.anyio

PAGES = ["/dashboard/", "/dashboard/requests", "/dashboard/users", "/dashboard/properties",
         "/dashboard/sessions", "/dashboard/cache", "/dashboard/ratelimits",
         "/dashboard/alerts", "/dashboard/budgets", "/dashboard/keys",
         "/dashboard/?period=30d&trend=week", "/dashboard/users?sort=cost&period=24h",
         "/dashboard/?period=all&trend=month", "/dashboard/?trend=hour",
         "/dashboard/?since=2020-01-01&until=2099-01-01", "/dashboard/cache?since=2020-01-01",
         "/dashboard/properties?key=feature", "/dashboard/ratelimits?period=24h"]


def browser(inproc) -> httpx.AsyncClient:
    """A client with its own cookie jar, like one browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=inproc.app),
                             base_url=GATEWAY_URL, timeout=30)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str = ADMIN_KEY,
                  next_path: str = "") -> httpx.Response:
    form = await client.get("/dashboard/login" + (f"?next={next_path}" if next_path else ""))
    assert form.status_code == 200
    return await client.post("/dashboard/login", data={
        "key": key, "login_token": hidden(form.text, "login_token"),
        "next": hidden(form.text, "next")})


async def signed_in(inproc, key: str = ADMIN_KEY) -> httpx.AsyncClient:
    client = browser(inproc)
    answer = await sign_in(client, key)
    assert answer.status_code == 303, answer.text
    return client


@contextlib.asynccontextmanager
async def session(inproc, key: str = ADMIN_KEY) -> AsyncIterator[httpx.AsyncClient]:
    client = await signed_in(inproc, key)
    try:
        yield client
    finally:
        await client.aclose()


async def logged_call(inproc, content: str, headers: dict, key: str = ADMIN_KEY) -> dict:
    raw = await inproc.openai(key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}],
        extra_headers=headers)
    return await inproc.record(raw.headers["helicone-id"]) if key == ADMIN_KEY else \
        {"id": raw.headers["helicone-id"]}


async def test_sign_in_exchanges_the_key_for_a_signed_httponly_cookie(inproc):
    client = browser(inproc)
    answer = await sign_in(client, ADMIN_KEY, "/dashboard/users")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/users"
    cookie = next(c for c in answer.headers.get_list("set-cookie")
                  if c.startswith("heliograph_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http here; https adds it (below)
    assert ADMIN_KEY not in cookie and ADMIN_KEY not in answer.headers["location"]
    page = await client.get("/dashboard/users")
    assert page.status_code == 200 and "Users" in page.text
    assert ADMIN_KEY not in page.text


async def test_the_cookie_is_secure_behind_https(inproc):
    client = browser(inproc)
    form = await client.get("/dashboard/login")
    answer = await client.post("/dashboard/login", headers={"x-forwarded-proto": "https"},
                               data={"key": ADMIN_KEY,
                                     "login_token": hidden(form.text, "login_token")})
    assert answer.status_code == 303
    assert "; Secure" in answer.headers["set-cookie"]


async def test_a_wrong_key_is_refused_with_the_form_again(inproc):
    client = browser(inproc)
    answer = await sign_in(client, "sk-hg-not-a-real-key")
    assert answer.status_code == 401
    assert "That key is not valid." in answer.text
    assert "heliograph_session=" not in answer.headers.get("set-cookie", "")
    assert (await client.get("/dashboard/")).status_code == 303


async def test_the_sign_in_form_needs_its_own_token(inproc):
    client = browser(inproc)
    answer = await client.post("/dashboard/login", data={"key": ADMIN_KEY})
    assert answer.status_code == 403
    assert "heliograph_session=" not in answer.headers.get("set-cookie", "")


async def test_pages_need_a_session_and_a_forged_cookie_is_no_session(inproc):
    client = browser(inproc)
    answer = await client.get("/dashboard/requests?model=gpt-4o")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dashboard/login?next=")
    client.cookies.set("heliograph_session", "eyJrIjoia2V5XzEifQ.forged.signature")
    assert (await client.get("/dashboard/requests")).status_code == 303


async def test_next_never_leads_off_the_dashboard(inproc):
    client = browser(inproc)
    for target in ("https://evil.example/x", "//evil.example/x", "/api/v1/keys"):
        answer = await sign_in(client, ADMIN_KEY, target)
        assert answer.headers["location"] == "/dashboard/", target
        client.cookies.clear()


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_renders_with_the_security_headers(inproc, path):
    await logged_call(inproc, "page render", {"Helicone-User-Id": "render-user",
                                              "Helicone-Property-Feature": "render",
                                              "Helicone-Session-Id": "render-session"})
    async with session(inproc) as client:
        page = await client.get(path)
    assert page.status_code == 200, page.text[-2000:]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    # No inline script: every <script> either has a src on this origin or is a data block.
    for tag in re.findall(r"<script[^>]*>", page.text):
        assert 'src="/dashboard/static/' in tag or 'type="application/json"' in tag, tag


async def test_a_request_made_with_the_sdk_opens_with_its_conversation(inproc):
    tag = uuid.uuid4().hex[:8]
    record = await logged_call(inproc, f"What is the capital of {tag}?",
                               {"Helicone-Property-Tag": tag, "Helicone-User-Id": f"u-{tag}"})
    async with session(inproc) as client:
        listing = await client.get(f"/dashboard/requests?property.Tag={tag}")
        assert listing.status_code == 200
        assert listing.text.count('class="open-request"') == 1
        assert f"/dashboard/requests/{record['id']}" in listing.text
        detail = await client.get(f"/dashboard/requests/{record['id']}")
        before = await client.get(f"/dashboard/requests?property.Tag={tag}&until=2020-01-01")
        other_model = await client.get(f"/dashboard/requests?property.Tag={tag}&model=gpt-4o")
    for empty in (before, other_model):
        assert empty.status_code == 200 and record["id"] not in empty.text
        assert "No requests match these filters." in empty.text
    assert detail.status_code == 200
    assert f"What is the capital of {tag}?" in detail.text
    answer = record["response"]["choices"][0]["message"]["content"]
    assert answer in detail.text
    assert "Cost breakdown" in detail.text and "gpt-4o-mini" in detail.text
    async with session(inproc) as client:
        download = await client.get(f"/dashboard/requests/{record['id']}/json")
    assert download.status_code == 200 and download.json() == record
    assert "attachment" in download.headers["content-disposition"]


async def test_the_property_form_rewrites_to_the_query_api_filter(inproc):
    async with session(inproc) as client:
        answer = await client.get("/dashboard/requests?model=gpt-4o&add_property=Workflow"
                                  "&add_value=triage")
    assert answer.status_code == 303
    assert answer.headers["location"] == \
        "/dashboard/requests?model=gpt-4o&property.Workflow=triage"


async def test_a_prompt_with_markup_renders_as_text(inproc):
    payload = '<script>alert("xss")</script><img src=x onerror="alert(1)">'
    record = await logged_call(inproc, payload, {"Helicone-Property-Note": payload,
                                                 "Helicone-User-Id": "<b>bold-user</b>"})
    async with session(inproc) as client:
        detail = await client.get(f"/dashboard/requests/{record['id']}")
        listing = await client.get("/dashboard/requests?user_id=<b>bold-user</b>")
    for page in (detail, listing):
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "<b>bold-user</b>" not in page.text
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in detail.text


async def test_bad_filters_are_a_clear_400_page(inproc):
    async with session(inproc) as client:
        for path, words in (("/dashboard/requests?status=abc", "status must be"),
                            ("/dashboard/requests?colour=red", "unknown query parameter"),
                            ("/dashboard/?period=2w", "period must be"),
                            ("/dashboard/requests?since=yesterday", "since must be"),
                            ("/dashboard/requests?cursor=%%%", "invalid cursor")):
            page = await client.get(path)
            assert page.status_code == 400, path
            assert words in page.text and "Traceback" not in page.text
        missing = await client.get(f"/dashboard/requests/{uuid.uuid4()}")
        assert missing.status_code == 404
        nowhere = await client.get("/dashboard/nowhere")
        assert nowhere.status_code == 404 and "text/html" in nowhere.headers["content-type"]


async def test_another_organization_sees_none_of_it(inproc):
    tag = uuid.uuid4().hex[:8]
    record = await logged_call(inproc, f"secret of {tag}", {"Helicone-Property-Tag": tag,
                                                            "Helicone-User-Id": f"u-{tag}"})
    other = create_key(inproc, "other org reader", organization=f"org-{uuid.uuid4().hex[:8]}")
    async with session(inproc, other) as client:
        listing = await client.get("/dashboard/requests")
        detail = await client.get(f"/dashboard/requests/{record['id']}")
        users = await client.get("/dashboard/users?period=all")
        props = await client.get("/dashboard/properties?period=all")
    assert listing.status_code == 200 and record["id"] not in listing.text
    assert detail.status_code == 404 and f"secret of {tag}" not in detail.text
    assert f"u-{tag}" not in users.text and tag not in props.text


async def test_a_read_only_key_cannot_manage_keys(inproc):
    reader = create_key(inproc, "reader")
    async with session(inproc, reader) as client:
        overview = await client.get("/dashboard/")
        assert overview.status_code == 200 and "read-only" in overview.text
        assert 'href="/dashboard/keys"' not in overview.text
        assert (await client.get("/dashboard/keys")).status_code == 403
        csrf = hidden(overview.text, "csrf")
        created = await client.post("/dashboard/keys", data={"csrf": csrf, "name": "sneaky"})
    assert created.status_code == 403
    status, body = await inproc.api("/api/v1/keys")
    assert "sneaky" not in [k["name"] for k in body["data"]]


async def test_keys_are_created_once_shown_and_revoked_with_csrf(inproc):
    name = f"dash-{uuid.uuid4().hex[:8]}"
    async with session(inproc) as client:
        page = await client.get("/dashboard/keys")
        csrf = hidden(page.text, "csrf")
        refused = await client.post("/dashboard/keys", data={"name": name})
        assert refused.status_code == 403
        refused = await client.post("/dashboard/keys", data={"name": name, "csrf": "x" * 32})
        assert refused.status_code == 403
        created = await client.post("/dashboard/keys", data={"name": name, "csrf": csrf})
        assert created.status_code == 201
        secret = re.search(r'id="new-key-secret">([^<]+)<', created.text).group(1)
        assert secret.startswith("sk-hg-")
        listing = await client.get("/dashboard/keys")
        assert name in listing.text and secret not in listing.text
        status, body = await inproc.api("/api/v1/requests?limit=1", key=secret)
        assert status == 200  # the new key works
        key_id = next(k["id"] for k in (await inproc.api("/api/v1/keys"))[1]["data"]
                      if k["name"] == name)
        revoked = await client.post(f"/dashboard/keys/{key_id}/revoke", data={"csrf": csrf})
        assert revoked.status_code == 303
    keys = (await inproc.api("/api/v1/keys"))[1]["data"]
    assert next(k for k in keys if k["id"] == key_id)["revoked"] is True


async def test_a_revoked_key_ends_its_sessions(inproc):
    key = create_key(inproc, "short-lived")
    client = await signed_in(inproc, key)
    assert (await client.get("/dashboard/requests")).status_code == 200
    key_id = next(k["id"] for k in (await inproc.api("/api/v1/keys"))[1]["data"]
                  if k["name"] == "short-lived" and not k["revoked"])
    await inproc.http.delete(f"/api/v1/keys/{key_id}",
                             headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert (await client.get("/dashboard/requests")).status_code == 303
    await client.aclose()


async def test_sign_out_needs_the_token_and_ends_the_session(inproc):
    client = await signed_in(inproc)
    page = await client.get("/dashboard/")
    refused = await client.post("/dashboard/logout", data={})
    assert refused.status_code == 403
    answer = await client.post("/dashboard/logout", data={"csrf": hidden(page.text, "csrf")})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert (await client.get("/dashboard/")).status_code == 303
    await client.aclose()


async def test_static_files_come_from_the_packages(inproc):
    import plotly

    client = browser(inproc)
    plotly_js = await client.get("/dashboard/static/plotly.min.js")
    assert plotly_js.status_code == 200
    assert plotly_js.headers["content-type"].startswith("text/javascript")
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert plotly_js.content == shipped.read_bytes()
    again = await client.get("/dashboard/static/plotly.min.js",
                             headers={"if-none-match": plotly_js.headers["etag"]})
    assert again.status_code == 304
    assert (await client.get("/dashboard/static/dashboard.css")).status_code == 200
    assert (await client.get("/dashboard/static/../app.py")).status_code == 404
    assert (await client.get("/dashboard/static/secret.txt")).status_code == 404


async def test_alerts_and_budgets_pages_list_the_organizations_rules(inproc):
    name = f"daily spend {uuid.uuid4().hex[:6]}"
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    created = await inproc.http.post("/api/v1/alerts", headers=auth, json={
        "name": name, "metric": "cost", "threshold": 5, "window": "1d",
        "channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}]})
    assert created.status_code == 201, created.text
    budget = await inproc.http.post("/api/v1/budgets", headers=auth, json={
        "name": f"budget {name}", "scope": {"user_id": f"nobody-{name}"}, "limit_usd": 3,
        "period": "day", "enforce": True,
        "channels": [{"type": "slack", "url": "https://hooks.slack.example/T0/B0/secret"}]})
    assert budget.status_code == 201, budget.text
    async with session(inproc) as client:
        page = await client.get("/dashboard/alerts")
        budgets = await client.get("/dashboard/budgets")
    assert page.status_code == 200 and budgets.status_code == 200
    assert name in page.text and "webhook" in page.text
    assert f"budget {name}" in budgets.text and "$0 / $3.00" in budgets.text
    # Channel addresses stay private (a Slack webhook URL is a credential).
    assert "http://127.0.0.1:9/hook" not in page.text
    assert "hooks.slack.example" not in budgets.text
    other = create_key(inproc, "other org", organization=f"org-{uuid.uuid4().hex[:8]}")
    async with session(inproc, other) as client:
        elsewhere = await client.get("/dashboard/alerts")
    assert name not in elsewhere.text and "No alerts configured." in elsewhere.text


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/dashboard/users/%00", None),
    ("GET", "/dashboard/requests?model=%00", None),
    ("GET", "/dashboard/sessions/" + "s" * 5000, None),
    ("GET", "/dashboard/requests?" + "&".join(f"property.p{i}=v" for i in range(30)), None),
    ("GET", "/dashboard/users?sort=nonsense", None),
    ("GET", "/dashboard/?trend=year", None),
    ("GET", "/dashboard/requests/x?extra=1", None),
    ("DELETE", "/dashboard/keys", None),
    ("POST", "/dashboard/keys", b"csrf=" + b"x" * (70 * 1024)),
    ("POST", "/dashboard/keys", b"\xff\xfe not a form"),
    ("POST", "/dashboard/keys/nope/revoke", b""),
])
async def test_odd_input_is_a_clear_answer_never_a_500(inproc, method, path, body):
    async with session(inproc) as client:
        answer = await client.request(method, path, content=body, headers={
            "content-type": "application/x-www-form-urlencoded"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[-500:])
    assert answer.headers["content-type"].startswith("text/html")
    assert "Traceback" not in answer.text


async def test_the_users_page_is_sorted_and_paged_by_the_database(inproc, monkeypatch):
    from heliograph.dashboard import reports
    monkeypatch.setattr(reports, "USERS_PER_PAGE", 2)
    tag = uuid.uuid4().hex[:8]
    for user, calls in (("a", 1), ("b", 3), ("c", 2)):
        for i in range(calls):
            await logged_call(inproc, f"users page {tag} {user} {i}",
                              {"Helicone-Property-Tag": tag, "Helicone-User-Id": f"{tag}-{user}"})

    def shown(html: str) -> list[str]:
        return re.findall(rf">({tag}-[abc])</a>", html)

    async with session(inproc) as client:
        first = await client.get(f"/dashboard/users?property.tag={tag}")
        assert first.status_code == 200 and shown(first.text) == [f"{tag}-b", f"{tag}-c"]
        next_url = re.search(r'href="([^"]+)" id="next-page"', first.text).group(1)
        second = await client.get(next_url.replace("&amp;", "&"))
        assert shown(second.text) == [f"{tag}-a"] and 'id="next-page"' not in second.text
        by_name = await client.get(f"/dashboard/users?property.tag={tag}&sort=user")
        assert shown(by_name.text) == [f"{tag}-a", f"{tag}-b"]
        stale = await client.get(f"{next_url.replace('&amp;', '&')}&sort=user")
        assert stale.status_code == 400   # a cursor of another sort
