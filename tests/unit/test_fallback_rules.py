"""The fallback chain (heliograph/proxy/routing.py): how a chain is spelled, and which
failures move on to the next model. Attempts are answered by a scripted function; the
exchange is a recorder of what the chain reports (the real one writes the log record)."""

from __future__ import annotations

import pytest

from heliograph.errors import BadRequest, GatewayError, UpstreamError, UpstreamTimeout
from heliograph.proxy.headers import parse
from heliograph.proxy.routing import Opened, chain_models, resolve_chain, send

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class AttemptLog:
    """Stands in for the Exchange: the attempts the chain reports, in order."""

    def __init__(self):
        self.attempts: list[tuple[str, int]] = []

    def start_attempt(self) -> None:
        pass

    def end_attempt(self, provider, model, status, error, headers=None, *, index=0) -> None:
        self.attempts.append((model, status))

    def set_response(self, response) -> None:
        pass


def scripted(outcomes: dict[str, object]):
    """An attempt function: each model answers with its status, or raises its error."""

    async def open_attempt(target):
        outcome = outcomes[target.model]
        if isinstance(outcome, GatewayError):
            raise outcome
        body = b'{"error": {"message": "scripted"}}' if outcome >= 400 else b""
        return Opened(status=outcome, headers={}, error_body=body, payload=target.model)

    return open_attempt


async def run_chain(registry, models, outcomes, **headers):
    options = parse({name.lower(): value for name, value in headers.items()})
    log = AttemptLog()
    chain = resolve_chain(registry, chain_models(",".join(models), options))
    answer = await send(chain, options, log, scripted(outcomes))
    return answer, log.attempts


# -- chain parsing ---------------------------------------------------------------------

@pytest.mark.parametrize("model_field, header, chain", [
    ("gpt-4o", None, ["gpt-4o"]),
    ("gpt-4o,claude-3-5-haiku-latest", None, ["gpt-4o", "claude-3-5-haiku-latest"]),
    ('"gpt-4o", "x/groq"', None, ["gpt-4o", "x/groq"]),
    ("gpt-4o", "gpt-4o-mini, groq/llama-3.1-8b-instant",
     ["gpt-4o", "gpt-4o-mini", "groq/llama-3.1-8b-instant"]),
    ("gpt-4o,gpt-4o-mini", "gpt-4o-mini,gpt-4o,o3", ["gpt-4o", "gpt-4o-mini", "o3"]),  # no repeats
])
def test_the_chain_is_the_model_field_then_the_fallback_header(model_field, header, chain):
    headers = {} if header is None else {"helicone-fallback-model": header}
    assert chain_models(model_field, parse(headers)) == chain


def test_a_model_field_of_only_commas_is_a_400():
    with pytest.raises(BadRequest) as info:
        chain_models(" , ", parse({}))
    assert info.value.code == "model_required"


def test_an_unknown_model_anywhere_in_the_chain_is_refused_up_front(registry):
    with pytest.raises(GatewayError) as info:
        resolve_chain(registry, chain_models("gpt-4o,no-such-model-xyz", parse({})))
    assert info.value.status == 404


# -- which failures fall over ----------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
async def test_the_default_codes_fall_over_to_the_next_model(registry, status):
    answer, attempts = await run_chain(registry, ["gpt-4o", "gpt-4o-mini"],
                                       {"gpt-4o": status, "gpt-4o-mini": 200})
    assert answer.index == 1 and answer.target.model == "gpt-4o-mini"
    assert attempts == [("gpt-4o", status), ("gpt-4o-mini", 200)]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
async def test_other_codes_are_the_answer_at_once(registry, status):
    with pytest.raises(GatewayError) as info:
        await run_chain(registry, ["gpt-4o", "gpt-4o-mini"],
                        {"gpt-4o": status, "gpt-4o-mini": 200})
    assert info.value.status == status


@pytest.mark.parametrize("error", [UpstreamError("connection refused"),
                                   UpstreamTimeout("no answer in time")])
async def test_connection_errors_and_timeouts_fall_over(registry, error):
    answer, attempts = await run_chain(registry, ["gpt-4o", "claude-3-5-haiku-latest"],
                                       {"gpt-4o": error, "claude-3-5-haiku-latest": 200})
    assert answer.target.provider.name == "anthropic"
    assert attempts == [("gpt-4o", error.status), ("claude-3-5-haiku-latest", 200)]


async def test_oncodes_replace_the_default_codes(registry):
    outcomes = {"gpt-4o": 400, "gpt-4o-mini": 200}
    answer, _ = await run_chain(registry, ["gpt-4o", "gpt-4o-mini"], outcomes,
                                **{"Helicone-Fallback-OnCodes": "400"})
    assert answer.index == 1
    with pytest.raises(GatewayError) as info:  # 503 is no longer listed
        await run_chain(registry, ["gpt-4o", "gpt-4o-mini"],
                        {"gpt-4o": 503, "gpt-4o-mini": 200},
                        **{"Helicone-Fallback-OnCodes": "400"})
    assert info.value.status == 503


async def test_every_step_failing_names_each_failure_with_the_last_status(registry):
    with pytest.raises(GatewayError) as info:
        await run_chain(registry, ["gpt-4o", "gpt-4o-mini", "o3"],
                        {"gpt-4o": 503, "gpt-4o-mini": 429, "o3": 500})
    assert info.value.status == 500 and info.value.code == "fallback_chain_failed"
    for model, status in (("gpt-4o", "503"), ("gpt-4o-mini", "429"), ("o3", "500")):
        assert f"{model} (openai): {status}" in info.value.message


async def test_a_single_model_failing_is_its_own_error(registry):
    with pytest.raises(GatewayError) as info:
        await run_chain(registry, ["gpt-4o"], {"gpt-4o": 503})
    assert info.value.status == 503 and info.value.code != "fallback_chain_failed"


async def test_retries_happen_within_a_step_before_falling_over(registry):
    _, attempts = await run_chain(
        registry, ["gpt-4o", "gpt-4o-mini"], {"gpt-4o": 503, "gpt-4o-mini": 200},
        **{"Helicone-Retry-Enabled": "true", "Helicone-Retry-Num": "2",
           "Helicone-Retry-Min-Timeout": "0", "Helicone-Retry-Max-Timeout": "0"})
    assert attempts == [("gpt-4o", 503)] * 3 + [("gpt-4o-mini", 200)]
