"""A full disk under the journal: requests are refused with a 507 before any provider is
called, /healthz says why, and freeing space brings the gateway back without a restart —
with every answered request's record in the database."""

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import openai
import pytest
from servers import ADMIN_KEY, Gateway


@contextlib.contextmanager
def small_tmpfs(path, size="20m"):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory) -> None:
    """Take every free byte of the file system with one file."""
    subprocess.run(["dd", "if=/dev/zero", f"of={directory / 'filler'}", "bs=1M"],
                   capture_output=True)


def healthz(gw) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(gw.url + "/healthz", timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def wait_health(gw, status: int, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body = healthz(gw)
        if code == status:
            return body
        assert time.monotonic() < deadline, (code, body)
        time.sleep(0.1)


def test_full_journal_disk_refuses_before_the_provider_and_recovers(upstream, tmp_path):
    mount = tmp_path / "journal-fs"
    with small_tmpfs(mount):
        gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}",
                     env={"HELIOGRAPH_JOURNAL_DIR": str(mount / "journal")})
        try:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
            ok = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "before"}])
            before_id = ok.headers["helicone-id"]

            fill(mount)
            body = wait_health(gw, 503)
            assert body["status"] == "degraded" and "journal" in body["reason"]
            assert "refusing requests (507)" in gw.log_text()

            upstream.clear()
            for stream in (False, True):
                with pytest.raises(openai.APIStatusError) as refused:
                    client.chat.completions.create(
                        model="gpt-4o-mini", stream=stream,
                        messages=[{"role": "user", "content": "disk full"}])
                assert refused.value.status_code == 507
                error = refused.value.body
                assert error["code"] == "insufficient_storage" and error["message"]
            assert upstream.received() == []  # refused before any provider was called

            (mount / "filler").unlink()
            assert wait_health(gw, 200) == {"status": "ok"}
            after_ids = []
            for stream in (False, True):
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", stream=stream,
                    messages=[{"role": "user", "content": "space again"}])
                after_ids.append(raw.headers["helicone-id"])
                if stream:
                    assert "".join(c.choices[0].delta.content or "" for c in raw.parse()
                                   if c.choices) == "Echo: space again"
                else:
                    assert raw.parse().choices[0].message.content == "Echo: space again"
            for request_id in (before_id, *after_ids):
                assert gw.record(request_id)["status"] == 200
            assert gw.proc.poll() is None
            assert "heliograph: worker" not in gw.log_text()  # none died
        finally:
            gw.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_record_failing_at_the_end_still_ends_the_stream_and_is_kept(upstream, tmp_path,
                                                                       workers):
    """The disk fills while a stream is being answered: the caller still gets the whole
    stream, and the record, kept in memory, reaches the database once space is back.
    The Prometheus files live on that disk too (metrics-<pid>/): counting the record
    must not kill the worker (it did, with SIGBUS, when they were sparse files)."""
    mount = tmp_path / "journal-fs"
    with small_tmpfs(mount):
        gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}",
                     workers=workers, env={"HELIOGRAPH_JOURNAL_DIR": str(mount / "journal")})
        try:
            request_id = str(uuid.uuid4())
            req = urllib.request.Request(
                gw.url + "/v1/chat/completions", method="POST",
                data=json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [
                    {"role": "user", "content": "slow " * 30}]}).encode(),
                headers={"Authorization": f"Bearer {ADMIN_KEY}",
                         "Content-Type": "application/json",
                         "Helicone-Request-Id": request_id,
                         # The fake upstream paces the stream so the disk fills mid-way.
                         "x-fake-behavior": "chunk-delay-40"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                first = resp.readline()
                fill(mount)
                rest = resp.read()
            text = (first + rest).decode()
            assert text.rstrip().endswith("data: [DONE]")
            wait_health(gw, 503)
            (mount / "filler").unlink()
            wait_health(gw, 200)
            assert gw.record(request_id)["status"] == 200
            assert gw.proc.poll() is None
            assert "heliograph: worker" not in gw.log_text()  # none died
        finally:
            gw.stop()
