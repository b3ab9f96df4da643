"""heliograph.costs: pricing from genai-prices' bundled data."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import warnings
from decimal import Decimal

import genai_prices
import pytest
from genai_prices.data import providers as GP_PROVIDERS

from heliograph import costs, price_table
from heliograph.costs import Cost, Usage, cost_of, usage_from_openai


def gp_model(provider_id: str, model_id: str):
    """The genai-prices ModelInfo with this exact id (the library's own data)."""
    provider = next(p for p in GP_PROVIDERS if p.id == provider_id)
    return next(m for m in provider.models if m.id == model_id)


def gp_price(provider_id: str, model_id: str):
    prices = gp_model(provider_id, model_id).prices
    assert isinstance(prices, genai_prices.types.ModelPrice), "test expects a fixed (unconditional) price"
    return prices


def per_token(mtok: Decimal) -> float:
    return float(mtok) / 1_000_000


def gp_calc(provider_id: str, model: str, u: Usage, when: dt.datetime | None = None) -> float:
    """genai-prices' own calc_price, with usage translated to its convention."""
    gu = genai_prices.Usage(
        input_tokens=u.prompt_tokens,
        output_tokens=u.completion_tokens,
        cache_read_tokens=u.cached_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
    )
    return float(genai_prices.calc_price(gu, model, provider_id=provider_id,
                                         genai_request_timestamp=when).total_price)


# --- known prices ---------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini"])
def test_plain_price_matches_library_data(model):
    mp = gp_price("openai", model)
    u = Usage(prompt_tokens=12_345, completion_tokens=678)
    c = cost_of("openai", model, u)
    assert c.known is True
    expected = 12_345 * per_token(mp.input_mtok) + 678 * per_token(mp.output_mtok)
    assert c.usd == pytest.approx(expected, rel=1e-12)


def test_published_list_prices():
    # gpt-4o-mini: $0.15 / M input, $0.60 / M output; gpt-4o: $2.50 / $10.00.
    assert cost_of("openai", "gpt-4o-mini", Usage(prompt_tokens=1_000_000)).usd == pytest.approx(0.15)
    assert cost_of("openai", "gpt-4o-mini", Usage(completion_tokens=1_000_000)).usd == pytest.approx(0.60)
    assert cost_of("openai", "gpt-4o", Usage(prompt_tokens=1_000_000)).usd == pytest.approx(2.50)
    assert cost_of("openai", "gpt-4o", Usage(completion_tokens=1_000_000)).usd == pytest.approx(10.00)


def test_zero_usage_is_known_zero():
    assert cost_of("openai", "gpt-4o", Usage()) == Cost(0.0, True)


@pytest.mark.parametrize("provider,dated,base", [
    ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
    ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-latest"),
])
def test_dated_model_names(provider, dated, base):
    u = Usage(prompt_tokens=1000, completion_tokens=100)
    c = cost_of(provider, dated, u)
    assert c.known and c.usd > 0
    assert c == cost_of(provider, base, u)


def test_model_name_case_and_whitespace():
    u = Usage(prompt_tokens=1000, completion_tokens=100)
    assert cost_of("OpenAI", " GPT-4o ", u) == cost_of("openai", "gpt-4o", u)


# --- cache reads, cache writes, reasoning ------------------------------------------------------

def test_cached_tokens_priced_at_cached_rate():
    mp = gp_price("openai", "gpt-4o")
    assert mp.cache_read_mtok < mp.input_mtok
    u = Usage(prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    c = cost_of("openai", "gpt-4o", u)
    expected = (2_000 * per_token(mp.input_mtok)          # uncached part of prompt_tokens
                + 8_000 * per_token(mp.cache_read_mtok)   # cached part, not counted twice
                + 500 * per_token(mp.output_mtok))
    assert c.usd == pytest.approx(expected, rel=1e-12)
    uncached = cost_of("openai", "gpt-4o", Usage(prompt_tokens=10_000, completion_tokens=500))
    assert c.usd < uncached.usd


def test_cached_tokens_without_cache_price_cost_plain_input():
    # groq llama-3.3-70b-versatile has no cache-read price: cached tokens are ordinary input.
    mp = gp_price("groq", "llama-3.3-70b-versatile")
    assert getattr(mp, "cache_read_mtok", None) is None
    u = Usage(prompt_tokens=1000, completion_tokens=10, cached_tokens=600)
    assert cost_of("groq", "llama-3.3-70b-versatile", u) == cost_of(
        "groq", "llama-3.3-70b-versatile", Usage(prompt_tokens=1000, completion_tokens=10))


@pytest.mark.parametrize("model", ["o1", "o3-mini"])
def test_reasoning_tokens_are_output_counted_once(model):
    mp = gp_price("openai", model)
    with_reasoning = cost_of("openai", model, Usage(prompt_tokens=100, completion_tokens=5_000,
                                                    reasoning_tokens=4_000))
    without_breakdown = cost_of("openai", model, Usage(prompt_tokens=100, completion_tokens=5_000))
    assert with_reasoning == without_breakdown
    assert with_reasoning.usd == pytest.approx(
        100 * per_token(mp.input_mtok) + 5_000 * per_token(mp.output_mtok), rel=1e-12)


def test_reasoning_rate_used_when_library_has_one():
    # perplexity sonar-deep-research prices reasoning separately from other output.
    mp = gp_price("perplexity", "sonar-deep-research")
    u = Usage(prompt_tokens=1_000, completion_tokens=3_000, reasoning_tokens=2_000)
    assert cost_of("perplexity", "sonar-deep-research", u).usd == pytest.approx(
        1_000 * per_token(mp.input_mtok) + 1_000 * per_token(mp.output_mtok)
        + 2_000 * per_token(mp.output_reasoning_mtok), rel=1e-12)


def test_anthropic_cache_write_and_read_rates():
    mp = gp_price("anthropic", "claude-3-5-haiku-latest")
    assert mp.cache_write_mtok > mp.input_mtok > mp.cache_read_mtok
    # OpenAI convention: prompt_tokens includes the 3000 cache-write and 1000 cache-read tokens.
    u = Usage(prompt_tokens=5_000, completion_tokens=200, cached_tokens=1_000, cache_write_tokens=3_000)
    c = cost_of("anthropic", "claude-3-5-haiku-20241022", u)
    expected = (1_000 * per_token(mp.input_mtok)
                + 1_000 * per_token(mp.cache_read_mtok)
                + 3_000 * per_token(mp.cache_write_mtok)
                + 200 * per_token(mp.output_mtok))
    assert c.known
    assert c.usd == pytest.approx(expected, rel=1e-12)


def test_inconsistent_counts_never_negative():
    # cached > prompt is bad upstream data; the uncached part clamps at 0 rather than going negative.
    c = cost_of("openai", "gpt-4o", Usage(prompt_tokens=100, cached_tokens=500, completion_tokens=-5))
    mp = gp_price("openai", "gpt-4o")
    assert c.usd == pytest.approx(500 * per_token(mp.cache_read_mtok))


# --- agreement with genai_prices.calc_price ----------------------------------------------------

@pytest.mark.parametrize("gw_provider,gp_provider,model", [
    ("openai", "openai", "gpt-4o"),
    ("openai", "openai", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "anthropic", "claude-sonnet-4-5"),        # tiered
    ("anthropic", "anthropic", "claude-3-5-haiku-20241022"),
    ("gemini", "google", "gemini-2.5-pro"),                 # tiered at 200k input
    ("xai", "x-ai", "grok-3"),
    ("groq", "groq", "llama-3.3-70b-versatile"),
    ("mistral", "mistral", "mistral-large-latest"),
    ("together", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("openrouter", "openrouter", "openai/gpt-4o"),
    ("fireworks", "fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
    ("cerebras", "cerebras", "llama3.1-8b"),
    ("perplexity", "perplexity", "sonar"),                  # per-request fee
    ("azure", "azure", "gpt-4o"),
])
@pytest.mark.parametrize("u", [
    Usage(prompt_tokens=1_234, completion_tokens=567, cached_tokens=200),
    Usage(prompt_tokens=300_000, completion_tokens=4_000, cached_tokens=100_000, cache_write_tokens=50_000,
          reasoning_tokens=1_000),
])
def test_agrees_with_genai_prices_calc_price(gw_provider, gp_provider, model, u):
    c = cost_of(gw_provider, model, u)
    assert c.known
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert c.usd == pytest.approx(gp_calc(gp_provider, model, u), rel=1e-9)


def test_fast_path_matches_library_for_every_bundled_price():
    usages = [Usage(1_000, 500, 200, 0, 0), Usage(300_000, 5_000, 100_000, 50_000, 2_000), Usage(50, 10, 0, 20, 5)]
    compared = 0
    for p in GP_PROVIDERS:
        for m in p.models:
            price_list = [m.prices] if isinstance(m.prices, genai_prices.types.ModelPrice) else [
                cp.prices for cp in m.prices]
            for mp in price_list:
                rates = costs._Rates(price_table.rates(mp))
                for u in usages:
                    gu = genai_prices.Usage(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens,
                                            cache_read_tokens=u.cached_tokens,
                                            cache_write_tokens=u.cache_write_tokens,
                                            output_reasoning_tokens=u.reasoning_tokens)
                    expected = float(mp.calc_price(gu)["total_price"])
                    assert rates.price(u) == pytest.approx(expected, rel=1e-9, abs=1e-15), (p.id, m.id, u)
                    compared += 1
    assert compared > 1000


def test_time_conditional_price_follows_request_time():
    # deepseek-chat has time-of-day prices in the bundled data.
    assert not isinstance(gp_model("deepseek", "deepseek-chat").prices, genai_prices.types.ModelPrice)
    u = Usage(prompt_tokens=10_000, completion_tokens=1_000, cached_tokens=2_000)
    for hour in (3, 20):
        when = dt.datetime(2026, 6, 1, hour, 0, tzinfo=dt.UTC)
        assert cost_of("deepseek", "deepseek-chat", u, at=when).usd == pytest.approx(
            gp_calc("deepseek", "deepseek-chat", u, when), rel=1e-12)
    assert cost_of("deepseek", "deepseek-chat", u).known


# --- provider names and unknowns ---------------------------------------------------------------

@pytest.mark.parametrize("provider,model,gp_provider", [
    ("openai", "gpt-4o", "openai"),
    ("anthropic", "claude-3-5-haiku-20241022", "anthropic"),
    ("gemini", "gemini-2.5-pro", "google"),
    ("groq", "llama-3.3-70b-versatile", "groq"),
    ("mistral", "mistral-large-latest", "mistral"),
    ("deepseek", "deepseek-chat", "deepseek"),
    ("xai", "grok-3", "x-ai"),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together"),
    ("openrouter", "openai/gpt-4o", "openrouter"),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks"),
    ("cerebras", "llama3.1-8b", "cerebras"),
    ("perplexity", "sonar", "perplexity"),
    ("azure", "gpt-4o", "azure"),
])
def test_gateway_provider_names_map(provider, model, gp_provider):
    pricer = costs._resolve(provider, model)
    assert pricer is not None and pricer.provider_id == gp_provider
    assert cost_of(provider, model, Usage(prompt_tokens=100, completion_tokens=10)).known


@pytest.mark.parametrize("provider,model", [
    ("openai", "definitely-not-a-model"),
    ("my-llm-box", "definitely-not-a-model"),
    ("openai", ""),
    ("ollama", "llama3.2"),      # local servers have no list price
    ("vllm", "gpt-4o"),
])
def test_unknown_model_is_unknown_not_zero(provider, model):
    c = cost_of(provider, model, Usage(prompt_tokens=1000, completion_tokens=100))
    assert c == Cost(None, False)
    assert c.usd is None and c.known is False


def test_garbage_arguments_are_unknown():
    assert cost_of(None, None, Usage(prompt_tokens=1)) == Cost(None, False)  # type: ignore[arg-type]
    assert cost_of(3, ["gpt-4o"], Usage(prompt_tokens=1)) == Cost(None, False)  # type: ignore[arg-type]


def test_unknown_provider_with_known_model_is_priced():
    u = Usage(prompt_tokens=1_000, completion_tokens=100)
    assert cost_of("my-company-proxy", "gpt-4o-mini", u) == cost_of("openai", "gpt-4o-mini", u)
    assert cost_of("corp-gateway", "claude-3-5-haiku-20241022", u) == cost_of(
        "anthropic", "claude-3-5-haiku-20241022", u)
    # a provider-prefixed model name through a user-defined router
    assert cost_of("my-router", "openai/gpt-4o", u) == cost_of("openai", "gpt-4o", u)


def test_known_provider_does_not_borrow_other_providers_prices():
    # groq does not serve gpt-4o; don't guess with OpenAI's price.
    assert cost_of("groq", "gpt-4o", Usage(prompt_tokens=1)) == Cost(None, False)


# --- runtime behaviour -------------------------------------------------------------------------

def test_no_network_and_no_updater(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", boom)
    monkeypatch.setattr(socket.socket, "connect", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    costs._resolve.cache_clear()
    for provider, model in [("openai", "gpt-4o"), ("gemini", "gemini-2.5-pro"), ("x", "nope")]:
        cost_of(provider, model, Usage(prompt_tokens=10, completion_tokens=1))
    assert not any(t.name.startswith("genai_prices") for t in threading.enumerate())


def test_custom_snapshot_elsewhere_does_not_change_our_prices():
    from genai_prices import data_snapshot

    u = Usage(prompt_tokens=1_000_000)
    before = cost_of("openai", "gpt-4o", u)
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=[], from_auto_update=True))
    try:
        costs._resolve.cache_clear()
        assert cost_of("openai", "gpt-4o", u) == before
    finally:
        data_snapshot.set_custom_snapshot(None)


def test_resolution_is_memoised_and_fast():
    u = Usage(prompt_tokens=1_234, completion_tokens=567, cached_tokens=100)
    costs._resolve.cache_clear()
    cost_of("openai", "gpt-4o", u)
    cost_of("openai", "gpt-4o", u)
    info = costs._resolve.cache_info()
    assert info.misses == 1 and info.hits == 1
    n = 5_000
    t0 = time.perf_counter()
    for _ in range(n):
        cost_of("openai", "gpt-4o", u)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 100e-6  # measured ~5 us; generous bound for loaded CI machines


# --- usage_from_openai -------------------------------------------------------------------------

def test_usage_from_openai_full():
    u = usage_from_openai({
        "prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
    assert u == Usage(prompt_tokens=1200, completion_tokens=300, cached_tokens=1024, reasoning_tokens=128)


def test_usage_from_openai_partial():
    assert usage_from_openai({"prompt_tokens": 10}) == Usage(prompt_tokens=10)
    assert usage_from_openai({"prompt_tokens": 10, "completion_tokens": 5,
                              "prompt_tokens_details": None, "completion_tokens_details": None}) == Usage(10, 5)
    assert usage_from_openai({"prompt_tokens": None, "completion_tokens": 7,
                              "prompt_tokens_details": {"cached_tokens": None},
                              "completion_tokens_details": {}}) == Usage(completion_tokens=7)


@pytest.mark.parametrize("bad", [None, {}, [], "usage", 42, {"prompt_tokens": "12", "completion_tokens": True},
                                 {"prompt_tokens_details": "x", "completion_tokens_details": [1]},
                                 {"prompt_tokens": -3, "completion_tokens": float("nan")}])
def test_usage_from_openai_tolerates_garbage(bad):
    assert usage_from_openai(bad) == Usage()


def test_usage_from_openai_responses_api_names():
    u = usage_from_openai({"input_tokens": 50, "output_tokens": 20,
                           "input_tokens_details": {"cached_tokens": 10},
                           "output_tokens_details": {"reasoning_tokens": 5}})
    assert u == Usage(prompt_tokens=50, completion_tokens=20, cached_tokens=10, reasoning_tokens=5)


def test_usage_from_openai_feeds_cost_of():
    raw = {"prompt_tokens": 2_000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 1_000}}
    mp = gp_price("openai", "gpt-4o-mini")
    assert cost_of("openai", "gpt-4o-mini", usage_from_openai(raw)).usd == pytest.approx(
        1_000 * per_token(mp.input_mtok) + 1_000 * per_token(mp.cache_read_mtok) + 100 * per_token(mp.output_mtok))


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -5, "completion_tokens": 3},
    {"prompt_tokens": 1e20, "completion_tokens": 3},
    {"prompt_tokens": 5, "completion_tokens": "3"},
    {"prompt_tokens": 5, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": -1}},
    {"input_tokens": 5, "output_tokens": -2, "cache_read_input_tokens": 0},
])
def test_malformed_usage_is_an_unknown_cost_not_a_free_request(usage):
    parsed = usage_from_openai(usage)
    assert parsed.malformed
    assert cost_of("openai", "gpt-4o-mini", parsed) == costs.UNKNOWN
    assert not usage_from_openai({"prompt_tokens": 0, "completion_tokens": 0}).malformed


# --- price_usage: the one pricing of a usage block (proxy and logging API) ---------------------

def test_price_usage_gives_the_record_fields():
    u = Usage(prompt_tokens=1_000, completion_tokens=200, cached_tokens=300,
              cache_write_tokens=0, reasoning_tokens=50)
    fields = costs.price_usage("openai", "gpt-4o", u, 1_780_000_000.0)
    assert fields == {
        "prompt_tokens": 1_000, "completion_tokens": 200, "total_tokens": 1_200,
        "cached_tokens": 300, "cache_write_tokens": 0, "reasoning_tokens": 50,
        "cost_usd": cost_of("openai", "gpt-4o", u).usd, "cost_known": True}
    assert fields["cost_usd"] > 0


def test_price_usage_unknown_model_keeps_the_tokens():
    u = Usage(prompt_tokens=7, completion_tokens=3)
    fields = costs.price_usage("openai", "no-such-model-xyz", u)
    assert fields["total_tokens"] == 10
    assert fields["cost_usd"] is None and fields["cost_known"] is False


def test_price_usage_prices_at_the_given_epoch_time():
    # deepseek-chat's price depends on the time of day: epoch seconds and the datetime
    # for the same instant must price alike, and differently at another hour.
    u = Usage(prompt_tokens=10_000, completion_tokens=1_000)
    prices = {}
    for hour in (3, 20):
        when = dt.datetime(2026, 6, 1, hour, 0, tzinfo=dt.UTC)
        by_epoch = costs.price_usage("deepseek", "deepseek-chat", u, when.timestamp())
        assert by_epoch == costs.price_usage("deepseek", "deepseek-chat", u, when)
        assert by_epoch["cost_usd"] == pytest.approx(
            gp_calc("deepseek", "deepseek-chat", u, when), rel=1e-12)
        prices[hour] = by_epoch["cost_usd"]
    assert prices[3] != prices[20]


# --- the compact table (heliograph/price_table.py) -----------------------------------------------

def _compact_names(model_id: str) -> list[str]:
    """Names to resolve for a model: its id, and dated ids written compactly."""
    names = [model_id, model_id.upper()]
    if any(ch.isdigit() for ch in model_id):
        names.append(model_id + "-20250101")
    return names


def test_table_resolves_every_bundled_model_as_genai_prices_does():
    prices = costs._prices()
    compared = 0
    for p in GP_PROVIDERS:
        ours = prices.by_id[p.id]
        for m in p.models:
            for name in _compact_names(m.id):
                expected = p.find_model(name.lower(), all_providers=GP_PROVIDERS)
                found = prices.find_model(ours, name.lower())
                assert (found and found.id) == (expected and expected.id), (p.id, name)
                compared += 1
    assert compared > 2000
    # Provider-less: the first provider whose model_match takes the name decides.
    for name in ("gpt-4o", "claude-3-5-haiku-20241022", "gemini-2.5-pro", "llama3.1-8b",
                 "mistral-large-latest", "grok-3", "definitely-not-a-model"):
        gp = next((p for p in GP_PROVIDERS
                   if p.model_match is not None and p.model_match.is_match(name)), None)
        expected = gp.find_model(name, all_providers=GP_PROVIDERS) if gp else None
        found = prices.find_by_model(name)
        assert (found and (found[0].id, found[1].id)) == \
            (expected and (gp.id, expected.id)), name


def test_table_conditional_prices_follow_genai_prices_at_any_time():
    prices = costs._prices()
    times = [dt.datetime(2024, 1, 1, h, 30, tzinfo=dt.UTC) for h in (0, 4, 12, 16, 23)] + \
        [dt.datetime(2026, 6, 1, h, tzinfo=dt.timezone(dt.timedelta(hours=8))) for h in (1, 9)]
    u = Usage(100_000, 10_000, 20_000, 5_000, 1_000)
    checked = 0
    for p in GP_PROVIDERS:
        for m in p.models:
            if isinstance(m.prices, genai_prices.types.ModelPrice):
                continue
            ours = next(x for x in prices.by_id[p.id].models if x.id == m.id)
            pricer = costs._Pricer(prices.by_id[p.id], ours)
            for when in times:
                expected = costs._Rates(price_table.rates(m.get_prices(when)))
                assert pricer.rates_at(when).price(u) == pytest.approx(expected.price(u)), \
                    (p.id, m.id, when)
                checked += 1
    assert checked > 0


def test_serve_writes_the_table_once_and_workers_read_it(tmp_path, monkeypatch):
    env: dict[str, str] = {}
    path = price_table.prepare(tmp_path, env)
    assert path is not None and env[price_table.PRICE_TABLE_ENV] == str(path)
    mtime = path.stat().st_mtime_ns
    assert price_table.prepare(tmp_path, env) == path and path.stat().st_mtime_ns == mtime
    assert price_table.read(path) == price_table.build()
    u = Usage(prompt_tokens=1_234, completion_tokens=567, cached_tokens=100)
    expected = cost_of("anthropic", "claude-sonnet-4-5", u)
    monkeypatch.setenv(price_table.PRICE_TABLE_ENV, str(path))
    monkeypatch.setattr(costs, "_PRICES", None)
    costs._resolve.cache_clear()
    try:
        assert cost_of("anthropic", "claude-sonnet-4-5", u) == expected
        # A table for other data (or garbage) is ignored: the prices are built here.
        stale = tmp_path / "stale.json"
        stale.write_text('{"format": 1, "source": "other", "providers": []}')
        assert price_table.read(stale) is None
        monkeypatch.setenv(price_table.PRICE_TABLE_ENV, str(stale))
        monkeypatch.setattr(costs, "_PRICES", None)
        costs._resolve.cache_clear()
        assert cost_of("anthropic", "claude-sonnet-4-5", u) == expected
    finally:
        costs._resolve.cache_clear()
        monkeypatch.setattr(costs, "_PRICES", None)


def test_a_worker_reading_the_table_never_imports_genai_prices_or_pydantic(tmp_path):
    import subprocess
    import sys

    path = price_table.prepare(tmp_path, {})
    code = ("import sys; from heliograph import costs; "
            "c = costs.cost_of('openai', 'gpt-4o-mini', costs.Usage(1000, 20)); "
            "assert c.known, c; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('genai_prices', 'pydantic')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ,
                               price_table.PRICE_TABLE_ENV: str(path)}, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_table_serve_cannot_write_leaves_workers_building_their_own(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    env: dict[str, str] = {}
    assert price_table.prepare(blocked / "journal", env) is None
    assert env == {} and "could not write the price table" in capsys.readouterr().err


@pytest.mark.parametrize("value", [None, 0, 1, 7, 10**15, 10**15 + 1, -1, True, False, 2.0,
                                   2.5, float("nan"), "3", [1]])
def test_usage_reads_every_count_as_the_counts_checks_do(value):
    # usage_from_openai's fast path (every count a plain int in range) must give what
    # token_count / malformed_counts give, whichever field holds the value.
    from heliograph.costs import Usage, malformed_counts, token_count, usage_from_openai
    for field, details in (("prompt_tokens", None), ("completion_tokens", None),
                           ("cached_tokens", "prompt_tokens_details"),
                           ("reasoning_tokens", "completion_tokens_details")):
        counts = {"prompt_tokens": 5, "completion_tokens": 3}
        if details is None:
            counts[field] = value
        else:
            counts[details] = {field: value}
        usage = usage_from_openai(counts)
        expected = Usage(
            **{"prompt_tokens": 5, "completion_tokens": 3, field: token_count(value)},
            malformed=malformed_counts(value))
        assert usage == expected and usage.malformed == expected.malformed, (field, value)


def test_price_usage_and_cost_of_agree():
    from heliograph.costs import Usage, cost_of, price_usage
    usage = Usage(1000, 200, 100, 0, 50)
    cost = cost_of("openai", "gpt-4o-mini", usage, at=1_741_569_952.0)
    priced = price_usage("openai", "gpt-4o-mini", usage, 1_741_569_952.0)
    assert cost.known and priced["cost_usd"] == cost.usd and priced["cost_known"]
    unknown = price_usage("openai", "no-such-model-anywhere", usage, 1_741_569_952.0)
    assert unknown["cost_usd"] is None and unknown["cost_known"] is False
    malformed = price_usage("openai", "gpt-4o-mini", Usage(1, 1, malformed=True))
    assert malformed["cost_usd"] is None and malformed["cost_known"] is False


def test_the_price_table_holds_unpriced_providers_compressed(tmp_path):
    """A worker prices a few of the ~50 providers: the others' model lists stay
    compressed (issue #15: ~390 KB of JSON text a worker held before), and a provider's
    first price reads them back whole."""
    import gc
    import tracemalloc

    path = tmp_path / "prices.json"
    price_table.write(path)
    gc.collect()
    tracemalloc.start()
    try:
        table = price_table.read(path)   # as a worker reads what serve wrote
        assert table is not None
        text_bytes = sum(len(p[3]) for p in table["providers"])
        prices = costs._Prices(table)
        del table
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text_bytes > 300_000 and held < text_bytes / 3, (held, text_bytes)
    found = prices.find_model(prices.by_id["openai"], "gpt-4o-mini")
    assert found is not None and found.id == "gpt-4o-mini"
    assert cost_of("openai", "gpt-4o-mini", Usage(1_000_000, 0)).usd == 0.15
