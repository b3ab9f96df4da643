"""Helicone-* request headers end to end."""

import uuid

import openai
import pytest


def chat(client, content="hi", **kwargs):
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], **kwargs)


def test_properties_user_and_session_are_logged(gateway, openai_client):
    raw = chat(openai_client, extra_headers={
        "Helicone-Property-Workflow": "triage", "Helicone-Property-Env": "prod",
        "Helicone-User-Id": "alice@example.com", "Helicone-Session-Id": "sess-1",
        "Helicone-Session-Path": "/plan/step1", "Helicone-Session-Name": "Planner"})
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["properties"] == {"workflow": "triage", "env": "prod"}
    assert rec["user_id"] == "alice@example.com"
    assert (rec["session_id"], rec["session_path"], rec["session_name"]) == \
        ("sess-1", "/plan/step1", "Planner")


def test_body_user_is_the_fallback_user_id(gateway, openai_client):
    raw = chat(openai_client, user="bob")
    assert gateway.record(raw.headers["helicone-id"])["user_id"] == "bob"
    raw = chat(openai_client, user="bob", extra_headers={"Helicone-User-Id": "carol"})
    assert gateway.record(raw.headers["helicone-id"])["user_id"] == "carol"


def test_caller_chosen_request_id(gateway, openai_client):
    request_id = str(uuid.uuid4())
    raw = chat(openai_client, extra_headers={"Helicone-Request-Id": request_id})
    assert raw.headers["helicone-id"] == request_id
    assert gateway.record(request_id)["id"] == request_id


def test_a_request_id_that_is_not_a_uuid_is_replaced(gateway, openai_client):
    """Helicone replaces it rather than refusing the call; Helicone-Id says which id the
    record got, and the record keeps the one asked for."""
    raw = chat(openai_client, extra_headers={"Helicone-Request-Id": "not-a-uuid"})
    assert raw.http_response.status_code == 200
    used = raw.headers["helicone-id"]
    assert uuid.UUID(used).version == 7   # a fresh id is time-ordered
    rec = gateway.record(used)
    assert rec["status"] == 200 and rec["requested_id"] == "not-a-uuid"


def test_omit_request_and_response_keep_metrics(gateway, openai_client):
    raw = chat(openai_client, "private words", extra_headers={
        "Helicone-Omit-Request": "true", "Helicone-Omit-Response": "true"})
    rec = gateway.record(raw.headers["helicone-id"])
    assert rec["request"] is None and rec["response"] is None
    assert rec["prompt_tokens"] > 0 and rec["cost_usd"] > 0 and rec["status"] == 200
    status, found = gateway.api("/api/v1/requests?q=private%20words")
    assert status == 200 and all(r["id"] != rec["id"] for r in found["data"])


def test_bad_boolean_header_is_a_400(gateway, openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client, extra_headers={"Helicone-Omit-Request": "maybe"})
    assert "Helicone-Omit-Request" in info.value.response.json()["error"]["message"] \
        or "helicone-omit-request" in info.value.response.json()["error"]["message"]
