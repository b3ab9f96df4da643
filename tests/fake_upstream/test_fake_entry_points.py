"""`python -m heliograph.fake_upstream --port P` serves (via run(), uvloop if present)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest
from aiohttp import web

import heliograph.fake_upstream as fake

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exports():
    assert isinstance(fake.build_app(), web.Application)
    assert callable(fake.run)


@pytest.fixture(scope="module")
def module_server():
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "heliograph.fake_upstream", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url + "/_fake/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_python_dash_m(module_server):
    c = openai.OpenAI(base_url=module_server + "/v1", api_key="sk-test", max_retries=0)
    r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Echo: hi"
    text = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi you"}], stream=True))
    assert text == "Echo: hi you"


def test_python_dash_m_reset(module_server):
    c = openai.OpenAI(base_url=module_server + "/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="gpt-4o-fake-reset",
                                  messages=[{"role": "user", "content": "hi"}])
