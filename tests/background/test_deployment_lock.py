"""A deployment-scoped job runs on exactly one of the hosts sharing a database (a
PostgreSQL advisory lock) or a Redis (a key with expiry and renewal), and another host
takes it over when its holder dies."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from servers import postgres_database

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HELIOGRAPH_TEST_REDIS_URL")
HERE = Path(__file__).parent
LOCK_TTL_S = 1.0


@pytest.fixture(params=["postgres", "redis"])
def shared(request, tmp_path):
    """(database_url, redis_url) that two replicas share."""
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("HELIOGRAPH_TEST_REDIS_URL not set: Redis tests skipped")
        # Each replica keeps its own SQLite database; only Redis is shared.
        yield "sqlite:///" + str(tmp_path / "unused.db"), REDIS_URL
        return
    if not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
    url, drop = postgres_database(POSTGRES_URL)
    yield url, ""
    drop()


def start_host(tmp_path: Path, replica: str, database_url: str, redis_url: str,
               holder_file: Path, job_name: str) -> subprocess.Popen:
    env = dict(os.environ, HOLDER_FILE=str(holder_file), HOLDER_JOB_NAME=job_name,
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "heliograph.background",
            "--journal", str(tmp_path / replica / "journal"), "--database-url", database_url,
            "--job", "background_holder_job:HolderJob", "--lock-ttl", str(LOCK_TTL_S)]
    if redis_url:
        argv += ["--redis-url", redis_url]
    return subprocess.Popen(argv, env=env)


def holders(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def runs(pids: list[int]) -> list[int]:
    """The sequence of holders, each once per uninterrupted stretch."""
    return [pid for i, pid in enumerate(pids) if i == 0 or pids[i - 1] != pid]


def test_one_replica_holds_a_deployment_job_and_another_takes_over(shared, tmp_path):
    database_url, redis_url = shared
    holder_file = tmp_path / "holders.txt"
    job_name = "test-holder-" + uuid.uuid4().hex[:8]  # a Redis key no one else uses
    hosts = [start_host(tmp_path, replica, database_url, redis_url, holder_file, job_name)
             for replica in ("a", "b")]
    try:
        deadline = time.monotonic() + 20
        while len(holders(holder_file)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2 * LOCK_TTL_S)  # long enough for a second holder to show, if any
        before = holders(holder_file)
        assert len(runs(before)) == 1, f"two replicas ran the job: {runs(before)}"
        first = before[0]
        assert all(host.poll() is None for host in hosts)  # both alive, one waiting

        holder = next(host for host in hosts if host.pid == first)
        other = next(host for host in hosts if host.pid != first)
        holder.kill()
        holder.wait(5)
        killed_at = time.monotonic()
        while other.pid not in holders(holder_file) and time.monotonic() < killed_at + 10:
            time.sleep(0.05)
        takeover_s = time.monotonic() - killed_at
        assert runs(holders(holder_file)) == [first, other.pid], takeover_s
        assert takeover_s < 4 * LOCK_TTL_S
    finally:
        for host in hosts:
            if host.poll() is None:
                host.send_signal(signal.SIGTERM)
                host.wait(10)
