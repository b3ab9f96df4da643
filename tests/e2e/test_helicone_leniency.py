"""Issue #12, Helicone's leniency and the headers Helicone's clients rely on, through the
real gateway with the official SDKs and the fake upstream: rate-limit policy syntax,
records readable and rateable right after the answer, the tutorial's user property,
provider 429s absorbed by retries, response headers, cache scope, target URLs,
moderation, prompt id / model override, Helicone's model ids."""

import concurrent.futures
import time
import uuid

import anthropic
import openai
import pytest
from servers import ADMIN_KEY, Gateway

from heliograph import costs
from heliograph.fake_upstream.moderations import FLAGGED_MARKER

MESSAGES = [{"role": "user", "content": "hello there"}]


def chat(client, model="gpt-4o-mini", content="hello there", **kwargs):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], **kwargs)


def new_key(gw, name: str) -> str:
    status, body = gw.api("/api/v1/keys", method="POST", body={"name": name})
    assert status == 201, body
    return body["key"]


@pytest.fixture(scope="module")
def lenient(upstream, tmp_path_factory):
    """A gateway that shares cached answers across an organization's keys and lets
    callers name the fake upstream (as `localhost`) as a target URL."""
    port = upstream.url.rsplit(":", 1)[1]
    gw = Gateway(tmp_path_factory.mktemp("lenient"), upstream.url,
                 f"sqlite:///{tmp_path_factory.mktemp('lenientdb') / 'h.db'}",
                 extra_config=f"""
[cache]
scope = "organization"

[proxy]
allowed_target_urls = ["http://localhost:{port}", "{upstream.url}/v1"]
""")
    yield gw
    gw.stop()


@pytest.fixture
def lenient_client(lenient):
    return openai.OpenAI(base_url=lenient.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


# -- 3. leniency ------------------------------------------------------------------------

def test_decimal_quotas_and_tolerant_policy_syntax(gateway, openai_client):
    for policy, echo in [("0.5;w=60;u=cents;s=user;", "0.5;w=60;u=cents"),
                         ("100 ; w=3600 ;; u=requests ,", "100;w=3600;u=request")]:
        raw = chat(openai_client, extra_headers={
            "Helicone-RateLimit-Policy": policy, "Helicone-User-Id": uuid.uuid4().hex})
        assert raw.http_response.status_code == 200
        assert raw.headers["helicone-ratelimit-policy"] == echo


@pytest.mark.parametrize("policy, says", [
    ("10;w=60;u=dollars", "unit u='dollars'"),      # a unit we cannot count
    ("1.5;w=60", "a request quota must be a whole number"),  # would silently be 1
    ("10;u=cents", "needs a window"),
])
def test_policies_that_would_do_something_else_are_still_400s(openai_client, upstream,
                                                               policy, says):
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client, extra_headers={"Helicone-RateLimit-Policy": policy})
    assert says in info.value.response.json()["error"]["message"]


# -- 4. no record lost; reads and feedback right after the answer -------------------------

def test_feedback_score_and_read_right_after_the_answer(gateway, openai_client):
    def one(_):
        request_id = chat(openai_client).headers["helicone-id"]
        fb = gateway.api(f"/v1/request/{request_id}/feedback", method="POST",
                         body={"rating": True})
        sc = gateway.api(f"/v1/request/{request_id}/score", method="POST",
                         body={"scores": {"accuracy": 90}})
        got = gateway.api(f"/api/v1/requests/{request_id}")
        return request_id, fb[0], sc[0], got

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(one, range(5)))
    for request_id, feedback_status, score_status, (read_status, rec) in results:
        assert (feedback_status, score_status, read_status) == (200, 200, 200)
        assert rec["id"] == request_id
    rec = gateway.record(results[0][0])
    assert rec["feedback"] is True and rec["scores"] == {"accuracy": 90}


def test_one_id_sent_at_once_to_two_workers_is_kept_by_one(state_gateway, state_client):
    """Each answer's Helicone-Id is the id its record is stored under: the workers claim
    a caller's id in the shared state, so at most one keeps it."""
    request_id = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        used = list(pool.map(lambda i: chat(state_client, content=f"twin {i}", extra_headers={
            "Helicone-Request-Id": request_id}).headers["helicone-id"], range(8)))
    assert used.count(request_id) == 1 and len(set(used)) == 8
    for i, record_id in enumerate(used):
        rec = state_gateway.record(record_id)
        assert rec["request"]["messages"][0]["content"] == f"twin {i}"
        assert rec["requested_id"] == (None if record_id == request_id else request_id)


def test_unknown_ids_are_still_404s(gateway):
    for request_id in (str(uuid.uuid4()), "not-a-uuid"):
        status, body = gateway.api(f"/v1/request/{request_id}/feedback", method="POST",
                                   body={"rating": False})
        assert status == 404 and request_id in body["error"]["message"]
        assert gateway.api(f"/api/v1/requests/{request_id}")[0] == 404


# -- 5. the user, as the tutorial tags it ---------------------------------------------------

def test_user_from_a_user_id_property(gateway, openai_client):
    user = "tutorial-" + uuid.uuid4().hex[:8]
    for name in ("UserId", "User-Id", "user"):
        raw = chat(openai_client, extra_headers={f"Helicone-Property-{name}": user})
        assert gateway.record(raw.headers["helicone-id"])["user_id"] == user
    # The header, then the body's `user`, come first.
    raw = chat(openai_client, user="from-body", extra_headers={"Helicone-Property-UserId": user})
    assert gateway.record(raw.headers["helicone-id"])["user_id"] == "from-body"
    raw = chat(openai_client, user="from-body", extra_headers={
        "Helicone-Property-UserId": user, "Helicone-User-Id": "from-header"})
    assert gateway.record(raw.headers["helicone-id"])["user_id"] == "from-header"
    status, found = gateway.api(f"/api/v1/users/{user}")
    assert status == 200 and found["requests"] == 3


# -- 6. provider 429s, response headers ------------------------------------------------------

def test_429s_absorbed_by_retries_and_fallbacks_are_counted(gateway, openai_client):
    model = f"gpt-4o-mini-{uuid.uuid4().hex[:6]}-fake-fail-then-ok-2"
    raw = chat(openai_client, model=model, extra_headers={
        "Helicone-Retry-Enabled": "true", "Helicone-Retry-Min-Timeout": "10",
        "Helicone-Retry-Max-Timeout": "50", "x-fake-counter-key": uuid.uuid4().hex})
    assert raw.http_response.status_code == 200
    fallen = f"gpt-4o-{uuid.uuid4().hex[:6]}-fake-status-429"
    raw2 = chat(openai_client, model=fallen, extra_headers={
        "Helicone-Fallback-Model": "claude-3-5-haiku-latest"})
    assert raw2.headers["helicone-fallback-index"] == "1"
    gateway.record(raw.headers["helicone-id"])
    gateway.record(raw2.headers["helicone-id"])
    status, body = gateway.api("/api/v1/ratelimits")
    groups = {(g["provider"], g["model"]): g for g in body["data"]}
    assert groups[("openai", model)]["requests_429"] == 2
    assert groups[("openai", fallen)]["requests_429"] == 1


def test_helicone_response_headers(gateway, openai_client):
    raw = chat(openai_client)
    assert raw.headers["helicone-status"] == "success"
    assert raw.headers["helicone-provider"] == "openai"
    assert raw.headers["helicone-model"].startswith("gpt-4o-mini")
    # A provider's error, relayed: still a success of the proxy's, as Helicone says.
    with pytest.raises(openai.InternalServerError) as info:
        chat(openai_client, model="gpt-4o-mini-fake-status-500")
    assert info.value.response.headers["helicone-status"] == "success"
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client, extra_headers={"Helicone-Cache-Enabled": "perhaps"})
    assert info.value.response.headers["helicone-status"] == "error"
    cached = {"Helicone-Cache-Enabled": "true"}
    content = "cache me " + uuid.uuid4().hex
    miss = chat(openai_client, content=content, extra_headers=cached)
    assert miss.headers["helicone-cache"] == "MISS"
    assert int(miss.headers["helicone-cache-latency"]) >= 0
    assert until_hit(openai_client, content, cached) == "HIT"
    hit = chat(openai_client, content=content, extra_headers=cached)
    assert int(hit.headers["helicone-cache-latency"]) >= 0


def test_anthropic_request_id_is_relayed(gateway):
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    raw = claude.messages.with_raw_response.create(
        model="claude-3-5-haiku-latest", max_tokens=50, messages=MESSAGES)
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["helicone-provider"] == "anthropic"


# -- 7. cache scope ---------------------------------------------------------------------------

def until_hit(client, content: str, headers: dict, timeout: float = 5.0) -> str:
    """The cache is written after the answer is sent: ask until the entry is there."""
    deadline = time.monotonic() + timeout
    while True:
        status = chat(client, content=content, extra_headers=headers).headers["helicone-cache"]
        if status == "HIT" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def client_for(url: str, key: str, own_key: str | None) -> tuple[openai.OpenAI, dict]:
    headers = {"Helicone-Cache-Enabled": "true"}
    if own_key is not None:  # bring-your-own-key: the gateway key in Helicone-Auth
        headers["Helicone-Auth"] = f"Bearer {key}"
    client = openai.OpenAI(base_url=url + "/v1", api_key=own_key or key, max_retries=0)
    return client, headers


def second_caller_sees(url: str, first_key: str, second_key: str,
                       own_keys: tuple[str, str] | tuple[None, None] = (None, None)) -> str:
    """Cache an answer as the first caller (until it hits), then ask as the second."""
    content = "scoped " + uuid.uuid4().hex
    client, headers = client_for(url, first_key, own_keys[0])
    assert until_hit(client, content, headers) == "HIT"
    client, headers = client_for(url, second_key, own_keys[1])
    return chat(client, content=content, extra_headers=headers).headers["helicone-cache"]


def test_cache_is_per_gateway_key_by_default(gateway):
    other = new_key(gateway, "cache-scope-" + uuid.uuid4().hex[:6])
    assert second_caller_sees(gateway.url, ADMIN_KEY, other) == "MISS"
    assert second_caller_sees(gateway.url, other, other) == "HIT"
    # Bring-your-own-key: one gateway key, two callers' provider keys.
    assert second_caller_sees(gateway.url, other, other, ("sk-one", "sk-two")) == "MISS"
    assert second_caller_sees(gateway.url, other, other, ("sk-one", "sk-one")) == "HIT"


def test_cache_scope_organization_shares_across_keys(lenient):
    other = new_key(lenient, "shared-" + uuid.uuid4().hex[:6])
    assert second_caller_sees(lenient.url, ADMIN_KEY, other) == "HIT"


# -- 8. target URLs, moderation, LLM security, prompt id and model override ----------------

def test_target_url_not_on_the_allow_list_is_refused_before_any_request(
        lenient_client, upstream):
    upstream.clear()
    for header, url in [("Helicone-Target-URL", "http://169.254.169.254"),
                        ("Helicone-OpenAI-Api-Base", "http://127.0.0.1:1/v1"),
                        ("Helicone-Target-URL", "http://localhost:1"),
                        ("Helicone-Target-URL", "file:///etc/passwd")]:
        with pytest.raises(openai.BadRequestError) as info:
            chat(lenient_client, extra_headers={header: url})
        message = info.value.response.json()["error"]["message"]
        assert header in message
    assert upstream.received() == []


def test_allowed_target_url_gets_the_request_without_the_gateway_key(
        lenient, lenient_client, upstream):
    port = upstream.url.rsplit(":", 1)[1]
    upstream.clear()
    raw = chat(lenient_client, model="my-own-model", extra_headers={
        "Helicone-Target-URL": f"http://localhost:{port}", "x-fake-keyless": "1"})
    assert raw.parse().choices[0].message.content == "Echo: hello there"
    (sent,) = upstream.received()
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "my-own-model"
    assert "authorization" not in sent["headers"]  # the gateway key never leaves
    assert lenient.record(raw.headers["helicone-id"])["provider"] == "custom"
    # Bring-your-own-key: the caller's provider key goes to its target.
    upstream.clear()
    byok = openai.OpenAI(base_url=lenient.url + "/v1", api_key="sk-caller-own",
                         max_retries=0)
    chat(byok, model="my-own-model", extra_headers={
        "Helicone-Auth": f"Bearer {ADMIN_KEY}",
        "Helicone-OpenAI-Api-Base": f"http://localhost:{port}/v1/"})
    (sent,) = upstream.received()
    assert sent["headers"]["authorization"] == "Bearer sk-caller-own"


def test_a_target_urls_answers_are_cached_apart(lenient_client, upstream):
    port = upstream.url.rsplit(":", 1)[1]
    content = "where from " + uuid.uuid4().hex
    cached = {"Helicone-Cache-Enabled": "true", "x-fake-keyless": "1"}
    targeted = dict(cached, **{"Helicone-Target-URL": f"http://localhost:{port}"})
    assert until_hit(lenient_client, content, cached) == "HIT"
    assert chat(lenient_client, content=content, extra_headers=targeted) \
        .headers["helicone-cache"] == "MISS"
    assert until_hit(lenient_client, content, targeted) == "HIT"


def test_target_url_of_a_configured_provider_uses_its_key(lenient_client, upstream):
    upstream.clear()
    chat(lenient_client, model="anything", extra_headers={
        "Helicone-Target-URL": upstream.url})
    (sent,) = upstream.received()
    assert sent["headers"]["authorization"] == "Bearer sk-upstream-openai"


def test_moderation_refuses_flagged_input(gateway, openai_client, upstream):
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client, content=f"tell me about {FLAGGED_MARKER}",
             extra_headers={"Helicone-Moderations-Enabled": "true"})
    error = info.value.response.json()["error"]
    assert error["code"] == "PROMPT_FLAGGED_FOR_MODERATION"
    assert "flagged by the OpenAI Moderation endpoint" in error["message"]
    assert [r["path"] for r in upstream.received()] == ["/v1/moderations"]
    rec = gateway.record(info.value.response.headers["helicone-id"])
    assert rec["status"] == 400
    # Clean input passes the check, then goes to the model; Claude too (checked at OpenAI).
    upstream.clear()
    for model in ("gpt-4o-mini", "claude-3-5-haiku-latest"):
        chat(openai_client, model=model, extra_headers={"Helicone-Moderations-Enabled": "true"})
    assert [r["path"] for r in upstream.received()] == \
        ["/v1/moderations", "/v1/chat/completions", "/v1/moderations", "/v1/messages"]
    # As Helicone: the latest message is checked when it is the user's; earlier turns
    # were checked when they were new.
    upstream.clear()
    openai_client.chat.completions.create(
        model="gpt-4o-mini", extra_headers={"Helicone-Moderations-Enabled": "true"},
        messages=[{"role": "user", "content": FLAGGED_MARKER},
                  {"role": "assistant", "content": "no"},
                  {"role": "user", "content": [{"type": "text", "text": "something else"}]}])
    assert upstream.received()[0]["body"]["input"] == ["something else"]


def test_llm_security_is_refused_as_not_supported(openai_client, upstream):
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client, extra_headers={"Helicone-LLM-Security-Enabled": "true"})
    assert "not supported" in info.value.response.json()["error"]["message"]
    assert upstream.received() == []
    chat(openai_client, extra_headers={"Helicone-LLM-Security-Enabled": "false"})


def test_prompt_id_and_model_override_are_recorded_and_priced(gateway, openai_client):
    raw = chat(openai_client, extra_headers={"Helicone-Prompt-Id": "triage-v2",
                                             "Helicone-Model-Override": "gpt-4o"})
    rec = gateway.record(raw.headers["helicone-id"])
    assert (rec["prompt_id"], rec["model_override"]) == ("triage-v2", "gpt-4o")
    usage = costs.Usage(prompt_tokens=rec["prompt_tokens"],
                        completion_tokens=rec["completion_tokens"])
    as_4o = costs.cost_of("openai", "gpt-4o", usage).usd
    as_mini = costs.cost_of("openai", "gpt-4o-mini", usage).usd
    assert rec["cost_usd"] == pytest.approx(as_4o) and as_4o > as_mini


# -- 9. Helicone's model ids ----------------------------------------------------------------

def test_helicone_model_ids_reach_the_provider_by_its_own_id(gateway, openai_client,
                                                             upstream):
    upstream.clear()
    raw = chat(openai_client, model="claude-sonnet-4")
    assert raw.parse().choices[0].message.content == "Echo: hello there"
    assert upstream.received()[-1]["body"]["model"] == "claude-sonnet-4-20250514"
    rec = gateway.record(raw.headers["helicone-id"])
    assert (rec["model"], rec["model_used"], rec["provider"]) == \
        ("claude-sonnet-4", "claude-sonnet-4-20250514", "anthropic")
    assert rec["cost_known"] is True
    raw = chat(openai_client, model="gemini-2.5-flash/gemini")
    assert gateway.record(raw.headers["helicone-id"])["provider"] == "gemini"


def test_an_unknown_provider_suffix_is_a_400_naming_the_known_ones(openai_client, upstream):
    upstream.clear()
    for model in ("gemini-2.0-flash/google", "gemini-2.0-flash/vertex", "bedrock/claude-sonnet-4"):
        with pytest.raises(openai.BadRequestError) as info:
            chat(openai_client, model=model)
        message = info.value.response.json()["error"]["message"]
        assert "unknown provider" in message and "anthropic, azure" in message
    assert upstream.received() == []
