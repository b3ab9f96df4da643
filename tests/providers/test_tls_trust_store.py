"""Upstream TLS: aiohttp imported without the system's trust store; every https call to
a provider verified with the gateway's own context, built by the first such call.

aiohttp builds two SSL contexts when it is imported (a verified one, a session's
default, and one that verifies nothing), each loading the system's ~140 CA
certificates: ~2 MB RSS in every worker, for contexts a worker whose providers speak
plain http never uses (bench/README.md, session 17). The gateway passes its own verified
context on each https call, so the certificate checks are the same as before: a provider
whose certificate the trust store (SSL_CERT_FILE here) vouches for is called, any other
refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from heliograph.errors import UpstreamError
from heliograph.providers import http


def _certificate_pair(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA of its own, and a certificate for 127.0.0.1 it signed: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject, issuer, public_key, signing_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1))
                   .not_valid_after(now + dt.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key,
               [(x509.BasicConstraints(ca=True, path_length=None), True),
                (x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                               content_commitment=False, key_encipherment=False,
                               data_encipherment=False, key_agreement=False,
                               encipher_only=False, decipher_only=False), True),
                (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
                 ca_name, key.public_key(), ca_key,
                 [(x509.SubjectAlternativeName(
                     [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
                  (x509.BasicConstraints(ca=False, path_length=None), True),
                  (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                   False)])
    paths = tmp / f"{name}-ca.pem", tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def _serve(cert: Path, key: Path) -> tuple[web.AppRunner, int]:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "got": (await request.read()).decode()})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


@pytest.fixture
def trusted_only(tmp_path, monkeypatch):
    """The gateway's trust store is one test CA's certificate alone (SSL_CERT_FILE, as an
    operator points OpenSSL at a bundle); built again for this test and after it."""
    trusted = _certificate_pair(tmp_path, "trusted")
    other = _certificate_pair(tmp_path, "other")
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted[0]))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    http.tls_context.cache_clear()
    yield trusted, other
    http.tls_context.cache_clear()


def test_https_providers_are_verified_against_the_trust_store(trusted_only):
    trusted, other = trusted_only

    async def calls():
        client = http.HttpClient(connect_timeout_s=5, read_timeout_s=5)
        good, good_port = await _serve(trusted[1], trusted[2])
        bad, bad_port = await _serve(other[1], other[2])
        try:
            answer = await client.request(
                "POST", f"https://127.0.0.1:{good_port}/v1/chat/completions", {}, b"hi",
                provider="p")
            async with client.stream(f"https://127.0.0.1:{good_port}/v1/chat/completions",
                                     {}, b"streamed", provider="p") as (status, _h, chunks):
                streamed = b"".join([chunk async for chunk in chunks])
            refusals = []
            for call in (client.request("POST", f"https://127.0.0.1:{bad_port}/v1/chat/"
                                        "completions", {}, b"x", provider="p"),
                         client.stream(f"https://127.0.0.1:{bad_port}/v1/chat/completions",
                                       {}, b"x", provider="p").__aenter__()):
                try:
                    await call
                except UpstreamError as exc:
                    refusals.append(str(exc))
            return answer, status, streamed, refusals
        finally:
            await client.close()
            await good.cleanup()
            await bad.cleanup()

    answer, status, streamed, refusals = asyncio.run(calls())
    assert answer.status == 200 and json.loads(answer.body) == {"ok": True, "got": "hi"}
    assert status == 200 and json.loads(streamed)["got"] == "streamed"
    assert len(refusals) == 2
    assert all("certificate verify failed" in message for message in refusals)


def test_aiohttp_is_imported_without_the_trust_store(tmp_path):
    """In a fresh interpreter, as a worker imports it: aiohttp's two contexts hold no
    certificate, the environment is as it was, and the gateway's context, built on
    demand, holds the system's certificates."""
    probe = (
        "import os, json\n"
        "before = {k: os.environ.get(k) for k in ('SSL_CERT_FILE', 'SSL_CERT_DIR')}\n"
        "from heliograph.providers import http\n"
        "import aiohttp.connector as c\n"
        "after = {k: os.environ.get(k) for k in ('SSL_CERT_FILE', 'SSL_CERT_DIR')}\n"
        "stores = [c._SSL_CONTEXT_VERIFIED.cert_store_stats()['x509'],\n"
        "          c._SSL_CONTEXT_UNVERIFIED.cert_store_stats()['x509']]\n"
        "built = http.tls_context.cache_info().currsize\n"
        "context = http.tls_context()\n"
        "print(json.dumps({'same_env': before == after, 'aiohttp': stores, 'built': built,\n"
        "                  'ours': context.cert_store_stats()['x509'],\n"
        "                  'verifies': context.verify_mode == __import__('ssl').CERT_REQUIRED\n"
        "                              and context.check_hostname}))\n")
    system = tmp_path / "system-ca.pem"
    system.write_bytes(_certificate_pair(tmp_path, "system")[0].read_bytes())
    # This checkout's package, whatever is installed.
    root = str(Path(http.__file__).resolve().parents[2])
    env = dict(os.environ, SSL_CERT_FILE=str(system),
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    env.pop("SSL_CERT_DIR", None)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    result = json.loads(out)
    assert result == {"same_env": True, "aiohttp": [0, 0], "built": 0, "ours": 1,
                      "verifies": True}
