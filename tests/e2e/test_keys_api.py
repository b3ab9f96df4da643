"""Keys over HTTP (/api/v1/keys) through the real gateway, on SQLite and PostgreSQL: an
admin key creates, lists and revokes keys; the new key works with the openai SDK, an
expired key is refused, a key limited to some models is refused the others."""

from __future__ import annotations

import datetime
import time
import uuid

import openai
import pytest
from servers import ADMIN_KEY

REVOKE_WITHIN_S = 10.0  # proxy/auth.KEY_CACHE_TTL_S, as the README documents


def _client(gateway, key):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def _create(gateway, **body):
    body.setdefault("name", "app-" + uuid.uuid4().hex[:6])
    status, answer = gateway.api("/api/v1/keys", method="POST", body=body)
    assert status == 201, answer
    return answer


def _chat(client, model="gpt-4o-mini"):
    return client.chat.completions.create(model=model,
                                          messages=[{"role": "user", "content": "hi"}])


def test_created_key_works_with_the_sdk_and_the_list_shows_no_secret(gateway):
    created = _create(gateway, name="billing-service")
    secret = created["key"]
    assert secret.startswith("sk-hg-") and created["name"] == "billing-service"
    assert created["admin"] is False and created["revoked"] is False
    assert _chat(_client(gateway, secret)).choices[0].message.content

    status, listing = gateway.api("/api/v1/keys")
    assert status == 200
    mine = [k for k in listing["data"] if k["id"] == created["id"]]
    assert len(mine) == 1
    # The short display prefix and nothing more: no secret, no hash, anywhere.
    assert mine[0]["prefix"] == secret[:12] + "…"
    assert secret not in str(listing) and secret[:13] not in str(listing)
    assert set(mine[0]) >= {"id", "name", "prefix", "created_at", "expires_at", "revoked",
                            "admin", "allowed_models"}


def test_revoked_key_is_refused_within_the_cache_ttl(gateway):
    created = _create(gateway)
    client = _client(gateway, created["key"])
    _chat(client)  # now cached by the worker
    status, revoked = gateway.api(f"/api/v1/keys/{created['id']}", method="DELETE")
    assert status == 200 and revoked["revoked"] is True
    deadline = time.monotonic() + REVOKE_WITHIN_S + 1
    while True:
        try:
            _chat(client)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "revoked key still accepted after the TTL"
        time.sleep(0.25)
    listed = {k["id"]: k for k in gateway.api("/api/v1/keys")[1]["data"]}
    assert listed[created["id"]]["revoked"] is True
    # Revoking an unknown key is a 404, OpenAI-shaped.
    status, body = gateway.api("/api/v1/keys/key_nope", method="DELETE")
    assert status == 404 and body["error"]["message"]


def test_non_admin_key_gets_403_on_every_keys_endpoint(gateway):
    plain = _create(gateway)["key"]
    for method, path, body in (("GET", "/api/v1/keys", None),
                               ("POST", "/api/v1/keys", {"name": "x"}),
                               ("DELETE", "/api/v1/keys/key_x", None)):
        status, answer = gateway.api(path, key=plain, method=method, body=body)
        assert status == 403, (method, answer)
        assert answer["error"]["type"] == "permission_error"
        assert "admin" in answer["error"]["message"]


def test_admin_key_made_over_http_manages_keys(gateway):
    admin = _create(gateway, admin=True)
    assert admin["admin"] is True
    status, made = gateway.api("/api/v1/keys", key=admin["key"], method="POST",
                               body={"name": "by-second-admin"})
    assert status == 201
    status, _ = gateway.api(f"/api/v1/keys/{made['id']}", key=admin["key"], method="DELETE")
    assert status == 200


def test_expired_key_is_refused_by_proxy_and_api(gateway):
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    created = _create(gateway, expires_at=soon.isoformat(), admin=True)
    assert created["expires_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M:%S"))
    client = _client(gateway, created["key"])
    _chat(client)
    time.sleep(max(0.0, (soon - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.3)
    with pytest.raises(openai.AuthenticationError) as refused:
        _chat(client)
    assert "expired" in str(refused.value)
    status, body = gateway.api("/api/v1/keys", key=created["key"])
    assert status == 401 and "expired" in body["error"]["message"]


def test_expires_in_days_is_set_and_bad_expiries_are_400(gateway):
    created = _create(gateway, expires_in_days=7)
    at = datetime.datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert abs((at - datetime.datetime.now(datetime.UTC)).total_seconds() - 7 * 86400) < 60
    for body in ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
                 {"name": "x", "expires_at": "next tuesday"},
                 {"name": "x", "expires_in_days": -1},
                 {"name": "x", "expires_in_days": 1, "expires_at": "2100-01-01"},
                 {"name": ""}, {"nam": "typo"}, {"name": "x", "allowed_models": "gpt"},
                 {"name": "x", "admin": "yes"}):
        status, answer = gateway.api("/api/v1/keys", method="POST", body=body)
        assert status == 400, (body, answer)
        assert answer["error"]["type"] == "invalid_request_error"


def test_key_with_allowed_models_is_refused_other_models(gateway):
    created = _create(gateway, allowed_models=["gpt-4o-mini"])
    assert created["allowed_models"] == ["gpt-4o-mini"]
    client = _client(gateway, created["key"])
    assert _chat(client, "gpt-4o-mini").choices
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _chat(client, "gpt-4o")
    assert refused.value.status_code == 403
    assert "'gpt-4o'" in str(refused.value) and "gpt-4o-mini" in str(refused.value)
    # A fallback to another model is refused too, before any provider is called.
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4o-mini,gpt-4o",
                                       messages=[{"role": "user", "content": "hi"}])


def test_cli_keys_create_with_expiry_and_allowed_models(gateway):
    done = gateway.cli("keys", "create", "--name", "cli-limited", "--expires-in-days", "2",
                       "--allowed-model", "gpt-4o-mini", "--allowed-model", "llama3.2")
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip().splitlines()[-1]
    listed = [k for k in gateway.api("/api/v1/keys")[1]["data"] if k["name"] == "cli-limited"]
    assert listed[-1]["allowed_models"] == ["gpt-4o-mini", "llama3.2"]
    assert listed[-1]["expires_at"] is not None
    row = [line for line in gateway.cli("keys", "list").stdout.splitlines()
           if listed[-1]["id"] in line][0]
    assert row.split()[-2:] == [listed[-1]["expires_at"], "gpt-4o-mini,llama3.2"]
    client = _client(gateway, secret)
    assert _chat(client, "gpt-4o-mini").choices
    with pytest.raises(openai.PermissionDeniedError):
        _chat(client, "gpt-4o")


def test_admin_env_key_is_still_listed_without_its_secret(gateway):
    listing = gateway.api("/api/v1/keys")[1]["data"]
    assert ADMIN_KEY not in str(listing)
    assert any(k["admin"] for k in listing)


def test_admin_key_manages_only_its_own_organization(gateway):
    org = "other-" + uuid.uuid4().hex[:6]
    done = gateway.cli("keys", "create", "--name", "their-admin", "--org", org, "--admin")
    assert done.returncode == 0, done.stderr
    theirs = done.stdout.strip().splitlines()[-1]
    ours = _create(gateway)
    status, listing = gateway.api("/api/v1/keys", key=theirs)
    assert status == 200 and [k["name"] for k in listing["data"]] == ["their-admin"]
    status, answer = gateway.api(f"/api/v1/keys/{ours['id']}", key=theirs, method="DELETE")
    assert status == 404, answer
    listed = {k["id"]: k for k in gateway.api("/api/v1/keys")[1]["data"]}
    assert listed[ours["id"]]["revoked"] is False
