"""SIGKILL under load loses no record of a request that got its answer; the background
host that writes records is one per machine, restarted when killed, gone with the gateway."""

import concurrent.futures
import json
import os
import signal
import socket
import threading
import time
import urllib.request

from servers import ADMIN_KEY, Gateway, background_hosts, processes


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


# -- the background host: one per machine, supervised, gone with the gateway ------------

def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def chat(gw) -> str:
    req = urllib.request.Request(
        gw.url + "/v1/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini",
                         "messages": [{"role": "user", "content": "bg"}]}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return resp.headers["helicone-id"]


def test_one_background_host_for_two_workers_restarted_when_killed(upstream, database_url,
                                                                   tmp_path):
    gw = Gateway(tmp_path, upstream.url, database_url, workers=2)
    journal = tmp_path / "journal"
    try:
        # Both workers try to start one; the loser exits at once. Then one, steadily.
        assert wait_for(lambda: len(background_hosts(journal)) == 1, 10)
        first = background_hosts(journal)
        for _ in range(20):
            time.sleep(0.1)
            assert background_hosts(journal) == first
        assert gw.record(chat(gw))["status"] == 200

        os.kill(first.pop(), signal.SIGKILL)
        killed_at = time.monotonic()
        replaced = wait_for(lambda: background_hosts(journal), 5)
        restart_s = time.monotonic() - killed_at
        assert len(replaced) == 1 and restart_s < 2.5, (replaced, restart_s)
        # Records keep reaching the database without restarting the gateway.
        ids = [chat(gw) for _ in range(5)]
        for request_id in ids:
            assert gw.record(request_id)["status"] == 200
    finally:
        gw.stop()
    # The host does not outlive the gateway.
    assert wait_for(lambda: not background_hosts(journal), 10)


def test_sigkill_of_the_master_takes_workers_and_host_down_and_serve_restarts(
        upstream, database_url, tmp_path):
    gw = Gateway(tmp_path, upstream.url, database_url, workers=2)
    journal = tmp_path / "journal"
    try:
        assert wait_for(lambda: len(background_hosts(journal)) == 1, 10)
        children = {pid: cmd for pid, (ppid, cmd) in processes().items()
                    if ppid == gw.proc.pid}
        # The two forked workers, nothing else (no multiprocessing resource tracker).
        assert len(children) == 2, children
        left_behind = set(children) | background_hosts(journal)

        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(5)
        killed_at = time.monotonic()
        assert wait_for(lambda: not (left_behind & set(processes())), 15), \
            f"still running after the master died: {left_behind & set(processes())}"
        exit_s = time.monotonic() - killed_at
        assert exit_s < 12, exit_s
        with socket.socket() as sock:  # nobody is left listening: the port binds
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", gw.port))

        gw.start()  # `heliograph serve` on the same port
        assert gw.record(chat(gw))["status"] == 200
    finally:
        gw.stop()


def test_the_master_replaces_a_dead_worker_and_stops_cleanly(upstream, database_url, tmp_path):
    gw = Gateway(tmp_path, upstream.url, database_url, workers=2)
    metrics = tmp_path / "journal" / f"metrics-{gw.proc.pid}"
    try:
        def workers() -> set[int]:
            return {pid for pid, (ppid, _) in processes().items() if ppid == gw.proc.pid}

        first = workers()
        assert len(first) == 2 and metrics.is_dir()
        dead = min(first)
        os.kill(dead, signal.SIGKILL)
        replaced = wait_for(lambda: len(now := workers()) == 2 and dead not in now and now, 10)
        assert replaced and replaced - first, replaced
        assert all(gw.record(chat(gw))["status"] == 200 for _ in range(4))

        os.kill(gw.proc.pid, signal.SIGTERM)  # the master alone: it stops its workers
        assert gw.proc.wait(20) == 0
        assert wait_for(lambda: not (replaced & set(processes())), 10)
        assert not metrics.exists()  # the folder serve made for this gateway's counters
    finally:
        gw.stop()
