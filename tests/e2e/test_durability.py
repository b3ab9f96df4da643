"""SIGKILL under load loses no record of a request that got its answer."""

import concurrent.futures
import json
import threading
import time
import urllib.request

from servers import ADMIN_KEY, Gateway


def stored(gw, request_id: str) -> bool:
    try:
        return gw.api(f"/api/v1/requests/{request_id}")[0] == 200
    except OSError:  # a connection lost while the restarted workers settle: ask again
        return False


def test_sigkill_under_load_loses_no_answered_request(upstream, database_url, tmp_path):
    gw = Gateway(tmp_path, upstream.url, database_url, workers=2)
    answered: list[str] = []
    stop = threading.Event()
    body = json.dumps({"model": "gpt-4o-mini",
                       "messages": [{"role": "user", "content": "durable"}]}).encode()

    def client_loop():
        while not stop.is_set():
            req = urllib.request.Request(gw.url + "/v1/chat/completions", data=body,
                                         headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    payload = resp.read()
                    if resp.status == 200 and json.loads(payload)["choices"]:
                        answered.append(resp.headers["helicone-id"])
            except Exception:
                return  # the gateway died under us: expected

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(client_loop)
        deadline = time.monotonic() + 20
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        gw.kill()
        stop.set()
    assert len(answered) >= 300
    pending = sum(p.read_bytes().count(b"\n") for p in (tmp_path / "journal").glob("*.jsonl"))
    # The kill landed while records were still only in the journal: the replay is tested.
    assert pending > 0

    gw.start()
    try:
        deadline = time.monotonic() + 30
        missing = set(answered)
        while missing and time.monotonic() < deadline:
            missing = {rid for rid in missing if not stored(gw, rid)}
            if missing:
                time.sleep(0.2)
        assert not missing, f"{len(missing)} of {len(answered)} answered requests lost"
    finally:
        gw.stop()
