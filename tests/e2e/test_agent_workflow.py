"""The seed's exercise: a two-step agent tagged with Helicone properties; the query API
gives both steps with per-step cost, tokens and latency, and the workflow's total cost is
the sum of genai-prices' prices for the usage returned."""

import uuid

import pytest
from genai_prices import Usage as GPUsage
from genai_prices import calc_price


def test_two_step_agent(gateway, openai_client):
    workflow = "research-" + uuid.uuid4().hex[:8]
    session = str(uuid.uuid4())
    headers = {"Helicone-Property-Workflow": workflow, "Helicone-Property-UserId": "u-42",
               "Helicone-Session-Id": session}
    research = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "research the history of tea"}],
        extra_headers={**headers, "Helicone-Property-Step": "research",
                       "Helicone-Session-Path": "/research"})
    notes = research.parse()
    summary = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "summarize: " + notes.choices[0].message.content}],
        extra_headers={**headers, "Helicone-Property-Step": "summarize",
                       "Helicone-Session-Path": "/research/summarize"})
    steps = {"research": (research.headers["helicone-id"], notes),
             "summarize": (summary.headers["helicone-id"], summary.parse())}
    for rid, _ in steps.values():
        gateway.record(rid)

    status, body = gateway.api(f"/api/v1/requests?property.Workflow={workflow}")
    assert status == 200 and len(body["data"]) == 2
    by_step = {r["properties"]["step"]: r for r in body["data"]}
    expected_total = 0.0
    for step, (rid, completion) in steps.items():
        rec = by_step[step]
        assert rec["id"] == rid and rec["properties"]["userid"] == "u-42"
        assert rec["prompt_tokens"] == completion.usage.prompt_tokens
        assert rec["completion_tokens"] == completion.usage.completion_tokens
        assert rec["latency_ms"] > 0
        price = calc_price(GPUsage(input_tokens=completion.usage.prompt_tokens,
                                   output_tokens=completion.usage.completion_tokens),
                           model_ref=completion.model, provider_id="openai")
        assert rec["cost_usd"] == pytest.approx(float(price.total_price))
        expected_total += float(price.total_price)
    assert by_step["research"]["model"] == "gpt-4o"
    assert by_step["summarize"]["model"] == "gpt-4o-mini"

    status, metrics = gateway.api(f"/api/v1/metrics?group_by=property.Step"
                                  f"&property.workflow={workflow}")
    assert {g["key"] for g in metrics["data"]} == {"research", "summarize"}
    assert metrics["total"]["cost_usd"] == pytest.approx(expected_total)

    status, tree = gateway.api(f"/api/v1/sessions/{session}")
    assert status == 200 and tree["requests"] == 2
    assert tree["cost_usd"] == pytest.approx(expected_total)
    root = tree["tree"][0]
    assert root["path"] == "/research" and root["cost_usd"] == pytest.approx(expected_total)
    assert root["children"][0]["path"] == "/research/summarize"
