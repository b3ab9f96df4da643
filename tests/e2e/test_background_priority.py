"""The real background host of a real gateway yields the CPU to serving (its journal
writer and search indexer under SCHED_IDLE, the rest at nice 19) and still keeps up:
under a sustained load from more clients than there are cores, every answered request
is in the database within a few seconds of the load's end."""

import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from servers import ADMIN_KEY, Gateway

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="scheduling policies are read from /proc")

SCHED_OTHER, SCHED_IDLE = 0, 5
LOAD_S = 6.0
CLIENTS = 8


def host_pid(journal: Path) -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "heliograph.background" in cmd and str(journal) in cmd:
            return int(entry)
    return None


def threads(pid: int) -> dict[int, tuple[int, int]]:
    """tid -> (nice, policy), from /proc/<pid>/task/<tid>/stat (fields 19 and 41)."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(tid)] = (int(fields[16]), int(fields[38]))
    return found


def chat(url: str) -> str:
    req = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini",
                         "messages": [{"role": "user", "content": "load"}]}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.status == 200
        return resp.headers["helicone-id"]


def test_the_host_yields_the_cpu_and_keeps_up_under_sustained_load(upstream, database_url,
                                                                    tmp_path):
    gw = Gateway(tmp_path, upstream.url, database_url, workers=2)
    try:
        chat(gw.url)  # the host's jobs have started once a record went through
        deadline = time.monotonic() + 10
        pid = None
        while time.monotonic() < deadline:
            pid = host_pid(tmp_path / "journal")
            if pid and sum(p == SCHED_IDLE for _, p in threads(pid).values()) >= 2:
                break
            time.sleep(0.1)
        assert pid is not None
        seen = threads(pid)
        assert seen[pid] == (19, SCHED_OTHER)  # the main thread (deployment-lock keeper's)
        idle = [t for t, (_, p) in seen.items() if p == SCHED_IDLE]
        assert len(idle) == 2, seen  # the journal writer and the search indexer
        # Every other thread (the writer's catch-up thread, the other jobs) at nice 19.
        assert all(v == (19, SCHED_OTHER) for t, v in seen.items() if t not in idle), seen

        answered: list[str] = []
        lock = threading.Lock()
        stop = time.monotonic() + LOAD_S

        def client():
            while time.monotonic() < stop:
                request_id = chat(gw.url)
                with lock:
                    answered.append(request_id)

        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        load_ended = time.monotonic()
        assert len(answered) > 100

        missing = set(answered)
        while missing and time.monotonic() - load_ended < 15:
            missing = {rid for rid in missing
                       if gw.api(f"/api/v1/requests/{rid}")[0] != 200}
            if missing:
                time.sleep(0.2)
        assert not missing, f"{len(missing)} of {len(answered)} not stored 15 s after"
    finally:
        gw.stop()
