"""GET /metrics on a real two-worker gateway: every counter summed across the workers,
after real requests through the openai SDK (each on a fresh connection, so both workers
serve some), parsed with prometheus-client's own parser."""

import time
import urllib.error
import urllib.request
import uuid

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import ADMIN_KEY, Gateway

from heliograph import costs

MESSAGES = [{"role": "user", "content": "count me"}]
PLAIN = 12  # plain requests, each on its own connection


@pytest.fixture(scope="module")
def metrics_gateway(upstream, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics")
    gw = Gateway(workdir, upstream.url, f"sqlite:///{workdir / 'heliograph.db'}", workers=2)
    yield gw
    gw.stop()


def fresh_client(gw):
    # A new client is a new connection: the kernel hands it to either worker.
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


def scrape(gw, token=None):
    request = urllib.request.Request(gw.url + "/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["content-type"].startswith("text/plain")
        return list(text_string_to_metric_families(resp.read().decode()))


def total(families, sample_name, **labels):
    return sum(s.value for f in families for s in f.samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))


def price(model, prompt, completion):
    usage = costs.usage_from_openai({"prompt_tokens": prompt, "completion_tokens": completion,
                                     "total_tokens": prompt + completion})
    return costs.price_usage("openai", model, usage)["cost_usd"]


def create(gw, model, headers=None, **kwargs):
    return fresh_client(gw).chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, extra_headers=headers or {}, **kwargs)


def test_counts_are_exact_across_two_workers(metrics_gateway):
    gw = metrics_gateway
    for _ in range(PLAIN):
        create(gw, "gpt-4o-mini-fake-usage-10-5")
    stream = create(gw, "gpt-4o-mini-fake-usage-7-3", stream=True)
    for _ in stream.parse():
        pass
    content = [{"role": "user", "content": "cache me " + uuid.uuid4().hex}]
    cache_headers = {"Helicone-Cache-Enabled": "true", "x-fake-behavior": "usage-4-2"}
    misses = 0
    while True:  # the cache is written after the answer: ask until the entry is there
        raw = fresh_client(gw).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=content, extra_headers=cache_headers)
        if raw.headers["helicone-cache"] == "HIT":
            break
        misses += 1
        assert misses < 50
        time.sleep(0.1)
    limit = {"Helicone-RateLimit-Policy": "1;w=60;u=request;s=user",
             "Helicone-User-Id": "metrics-" + uuid.uuid4().hex[:8]}
    create(gw, "gpt-4o-mini", limit)
    with pytest.raises(openai.RateLimitError):
        create(gw, "gpt-4o-mini", limit)
    fallback = create(gw, "gpt-4o-mini-fake-status-503",
                      {"Helicone-Fallback-Model": "gpt-4o-mini",
                       "x-fake-behavior": "usage-20-8"})
    assert fallback.headers["helicone-fallback-index"] == "1"
    with pytest.raises(openai.InternalServerError):
        create(gw, "gpt-4o-mini-fake-status-500")
    with pytest.raises(openai.APIStatusError) as down:
        create(gw, "down-model")
    assert down.value.status_code == 502

    families = scrape(gw)
    requests = "heliograph_requests_total"
    ok = PLAIN + 1 + misses + 1 + 1 + 1  # plain, stream, cache misses + hit, limited, fallback
    assert total(families, requests, status_class="2xx") == ok
    assert total(families, requests, status_class="4xx") == 1
    assert total(families, requests, status_class="5xx") == 2
    assert total(families, requests, model="gpt-4o-mini-fake-usage-10-5", provider="openai",
                 status_class="2xx", path="/v1/chat/completions") == PLAIN
    tokens = "heliograph_tokens_total"
    assert total(families, tokens, model="gpt-4o-mini-fake-usage-10-5", kind="prompt") == \
        10 * PLAIN
    assert total(families, tokens, model="gpt-4o-mini-fake-usage-10-5", kind="completion") == \
        5 * PLAIN
    assert total(families, tokens, model="gpt-4o-mini-fake-usage-7-3", kind="completion") == 3
    # A hit's tokens are counted (what it served); its cost is 0, its saving the miss's.
    assert total(families, tokens, model="gpt-4o", kind="prompt") == 4 * (misses + 1)
    assert total(families, tokens, model="gpt-4o", kind="completion") == 2 * (misses + 1)
    assert total(families, "heliograph_cache_hits_total", model="gpt-4o") == 1
    cache_call = price("gpt-4o", 4, 2)
    assert total(families, "heliograph_cache_saved_usd_total") == pytest.approx(cache_call)
    assert total(families, "heliograph_cost_usd_total", model="gpt-4o") == \
        pytest.approx(misses * cache_call)
    assert total(families, "heliograph_request_duration_seconds_count") == ok + 3
    assert total(families, "heliograph_time_to_first_token_seconds_count") == 1
    assert total(families, "heliograph_ratelimit_refusals_total", model="gpt-4o-mini") == 1
    assert total(families, "heliograph_budget_refusals_total") == 0
    assert total(families, "heliograph_fallbacks_total", model="gpt-4o-mini") == 1
    assert total(families, tokens, kind="prompt", model="gpt-4o-mini") >= 20
    # The fallback's second attempt is the only attempt beyond a first.
    assert total(families, "heliograph_retries_total") == 1
    errors = "heliograph_upstream_errors_total"
    assert total(families, errors, kind="status") == 2  # the 503 before the fallback, the 500
    assert total(families, errors, kind="status", model="gpt-4o-mini-fake-status-500") == 1
    assert total(families, errors, kind="connection", provider="down") == 1
    assert total(families, errors, kind="timeout") == 0

    # Both workers recorded some of it (one file per process), and every scrape, whichever
    # worker answers it, says the same.
    folders = list((gw.workdir / "journal").glob("metrics-*"))
    assert len(folders) == 1
    assert len(list(folders[0].glob("counter_*.db"))) == 2
    for _ in range(6):
        again = scrape(gw)
        assert total(again, requests) == ok + 3
        assert total(again, tokens) == total(families, tokens)


def test_journal_gauges_are_there(metrics_gateway):
    families = {f.name: f for f in scrape(metrics_gateway)}
    for name in ("heliograph_journal_segments", "heliograph_journal_bytes",
                 "heliograph_journal_writer_lag_seconds"):
        assert families[name].type == "gauge"
        assert families[name].samples[0].value >= 0


def test_a_token_is_required_once_configured(upstream, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'heliograph.db'}",
                 extra_config='\n[metrics]\ntoken = "scrape-secret"\n')
    try:
        for token in (None, "wrong"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                scrape(gw, token)
            assert refused.value.code == 401
            body = refused.value.read().decode()
            assert "invalid_metrics_token" in body and '"error"' in body
        create(gw, "gpt-4o-mini")
        # One worker: its counters are in memory, not in the multiprocess files.
        families = scrape(gw, "scrape-secret")
        assert total(families, "heliograph_requests_total", status_class="2xx") == 1
    finally:
        gw.stop()


def test_disabled_metrics_are_a_404_and_leave_no_folder(upstream, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'heliograph.db'}",
                 extra_config="\n[metrics]\nenabled = false\n")
    try:
        create(gw, "gpt-4o-mini")
        with pytest.raises(urllib.error.HTTPError) as missing:
            scrape(gw)
        assert missing.value.code == 404
        assert "disabled" in missing.value.read().decode()
        assert list((tmp_path / "journal").glob("metrics-*")) == []
    finally:
        gw.stop()


def status_of(gw, headers):
    request = urllib.request.Request(gw.url + "/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_loopback_check_sees_the_client_a_trusted_proxy_forwards(metrics_gateway):
    """uvicorn's X-Forwarded-For handling (its proxy-headers middleware, run by App only
    for requests carrying such headers: server.forwarded_when_sent): from a trusted proxy
    (loopback is trusted by default) the forwarded client is the caller /metrics checks."""
    assert status_of(metrics_gateway, {}) == 200
    assert status_of(metrics_gateway, {"X-Forwarded-For": "203.0.113.9"}) == 403
    assert status_of(metrics_gateway, {"X-Forwarded-For": "127.0.0.1"}) == 200
    # The last untrusted address of a chain is the client, as in uvicorn.
    assert status_of(metrics_gateway, {"X-Forwarded-For": "127.0.0.1, 198.51.100.7"}) == 403
    assert status_of(metrics_gateway, {"X-Forwarded-Proto": "https"}) == 200
