"""Real processes on real sockets for the end-to-end tests: the fake upstream and the
gateway itself (`heliograph serve`), each a subprocess."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ADMIN_KEY = "sk-hg-test-admin-key-0123456789abcdef"
# How long a record may take to go through the journal and the writer into the store:
# ~0.2-0.4 s on a quiet machine (the journal's rotation plus the writer's poll), but CI's
# three test processes share two cores with PostgreSQL and the gateways' writers, and a
# writer has been seen to need over 10 s there.
RECORD_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def guarded_uvicorn(app):
    """uvicorn with the gateway's own HTTP protocol (server.GuardedHttpToolsProtocol)
    serving `app` in a thread on a free port; yields the port."""
    import asyncio
    import threading

    import uvicorn

    from heliograph.server import GuardedHttpToolsProtocol

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           http=GuardedHttpToolsProtocol, log_level="error",
                                           access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def websocket_upgrade(port: int, path: str) -> bytes:
    """Ask the server on `port` to upgrade `path` to a WebSocket; its whole reply."""
    key = base64.b64encode(os.urandom(16))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def wait(predicate, timeout: float = 20.0, what: str = "condition"):
    """predicate()'s first truthy value, polled every 0.1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: "
                               f"{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


def spawn_logged(argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """A server whose output goes to a file: a pipe nobody reads would block it once
    full (a few tracebacks are enough)."""
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)


class FakeUpstream:
    def __init__(self):
        self.port = free_port()
        self.log = Path(tempfile.mkdtemp(prefix="heliograph-fake-")) / "fake-upstream.log"
        self.proc = spawn_logged(
            [sys.executable, "-m", "heliograph.fake_upstream", "--port", str(self.port)],
            self.log)
        wait_port(self.port, self.proc, self.log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[dict]:
        with urllib.request.urlopen(self.url + "/_fake/requests") as resp:
            data = json.load(resp)
        return data["requests"] if isinstance(data, dict) else data

    def clear(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/_fake/requests",
                                                      method="DELETE")).read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Gateway:
    """`heliograph serve` in a subprocess, configured against the fake upstream."""

    def __init__(self, workdir: Path, upstream_url: str, database_url: str,
                 workers: int = 1, extra_config: str = "", env: dict | None = None,
                 limits: str = ""):
        self.workdir = workdir
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.config_path = workdir / "heliograph.toml"
        self.config_path.write_text(f"""
[storage]
database_url = "{database_url}"
journal_dir = "{workdir / 'journal'}"

[limits]
max_body_mb = 1
upstream_connect_timeout_s = 2
upstream_timeout_s = 3
{limits}

[providers.openai]
base_url = "{upstream_url}/v1"

[providers.groq]
base_url = "{upstream_url}/v1"

[providers.mistral]
base_url = "{upstream_url}/v1"

[providers.anthropic]
base_url = "{upstream_url}"

[providers.gemini]
base_url = "{upstream_url}"

[providers.azure]
base_url = "{upstream_url}"
api_version = "2024-10-21"

[providers.local]
type = "openai"
base_url = "{upstream_url}/v1"
models = ["llama3.2"]
headers = {{ "x-fake-keyless" = "1" }}

[providers.down]
type = "openai"
base_url = "http://127.0.0.1:{free_port()}/v1"
api_key = "sk-down"
models = ["down-model"]
{extra_config}
""")
        self.env = dict(os.environ)
        self.env.update({"HELIOGRAPH_ADMIN_KEY": ADMIN_KEY, "OPENAI_API_KEY": "sk-upstream-openai",
                         "GROQ_API_KEY": "sk-upstream-groq", "MISTRAL_API_KEY": "sk-upstream-mistral",
                         "ANTHROPIC_API_KEY": "sk-upstream-anthropic",
                         "GEMINI_API_KEY": "sk-upstream-gemini",
                         "AZURE_OPENAI_API_KEY": "sk-upstream-azure"})
        for var in ("HELIOGRAPH_DATABASE_URL", "HELIOGRAPH_REDIS_URL", "HELIOGRAPH_JOURNAL_DIR"):
            self.env.pop(var, None)
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heliograph", *args, "--config",
                               str(self.config_path)], capture_output=True, text=True,
                              env=self.env, cwd=self.workdir, timeout=60)

    def start(self) -> None:
        self.proc = spawn_logged(
            [sys.executable, "-m", "heliograph", "serve", "--config", str(self.config_path),
             "--port", str(self.port), "--workers", str(self.workers)],
            self.log, env=self.env, cwd=self.workdir, start_new_session=True)
        wait_port(self.port, self.proc, self.log, 30)
        self._wait_healthy(30)

    def _wait_healthy(self, timeout: float) -> None:
        """The port accepts before a worker serves (the supervisor binds it first)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"gateway not healthy: {self.log_text()[-4000:]}")
            time.sleep(0.1)

    @property
    def log(self) -> Path:
        return self.workdir / "gateway.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and every worker."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    # -- the query API ---------------------------------------------------------
    def api(self, path: str, key: str = ADMIN_KEY, method: str = "GET", body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def record(self, request_id: str, key: str = ADMIN_KEY, timeout: float = RECORD_TIMEOUT_S) -> dict:
        """The logged record, waiting for the background writer to flush it."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.api(f"/api/v1/requests/{request_id}", key)
            if status == 200:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"record {request_id} never appeared: {status} {body}")
            time.sleep(0.05)


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def postgres_schema(base_url: str, prefix: str = "heliograph_test_"):
    """A fresh, empty schema on the test server (selected through search_path in the
    URL it yields), dropped afterwards."""
    import psycopg

    schema = prefix + uuid.uuid4().hex[:12]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(base_url, schema)
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def migrated_postgres_schema(base_url: str, prefix: str = "heliograph_test_"):
    """A schema migrated once, for a whole module or session: tests that only need a
    migrated, empty database share it and call empty_postgres_tables() before each test,
    instead of paying CREATE SCHEMA + every migration + DROP (~0.3 s) each time."""
    from heliograph.store import open_store

    with postgres_schema(base_url, prefix) as url:
        open_store(url).close()
        yield url


def empty_postgres_tables(url: str) -> None:
    """Empty every table of the URL's schema except the migration history, so the schema
    is as a fresh migration left it (no table has a sequence to restart)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        # A connection a previous test leaked inside a transaction would block this
        # forever: fail with a clear lock timeout instead.
        conn.execute("SET lock_timeout = '10s'")
        # Months' partitions (PostgresStore makes them as records need them) go, so a
        # test's plans do not depend on the months earlier tests used; the store makes
        # this month's and the next ones' again when it opens.
        months = [row[0] for row in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind = 'r' AND relname ~ '_p([0-9]{6}|legacy)$'")]
        for name in months:
            conn.execute(f'DROP TABLE "{name}"')
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'schema_migrations'")]
        # DELETE, not TRUNCATE: on a handful of rows it is several times faster (TRUNCATE
        # swaps every table's files), and one transaction keeps it to one commit.
        with conn.transaction():
            for table in tables:
                conn.execute(f'DELETE FROM "{table}"')


def copy_of(migrated_sqlite_file: Path, target: Path) -> str:
    """The sqlite:/// URL of a fresh copy of a migrated database: a few ms, where running
    every migration on a new file takes ten times that."""
    shutil.copyfile(migrated_sqlite_file, target)
    return f"sqlite:///{target}"


def postgres_database(base_url: str) -> tuple[str, callable]:
    """A fresh database on the test server, and a function that drops it."""
    import psycopg

    name = "heliograph_e2e_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    prefix = base_url.rsplit("/", 1)[0]

    def drop():
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{prefix}/{name}", drop


# -- processes seen in /proc ------------------------------------------------------------
def processes() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != b"Z":
            found[int(entry)] = (int(fields[1]), cmdline)
    return found


def background_hosts(journal: Path) -> set[int]:
    return {pid for pid, (_, cmd) in processes().items()
            if "heliograph.background" in cmd and str(journal) in cmd}


def raw_chat_post(port: int, body: dict, extra: str = "", on_socket=None):
    """One chat call on a fresh connection (connection: close, admin key), read to its
    end: (the whole response, on_socket(sock) before the socket closes, or None).
    `extra`: more header lines, each ending in CRLF."""
    payload = json.dumps(body).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
               f"authorization: Bearer {ADMIN_KEY}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(payload)}\r\nconnection: close\r\n{extra}\r\n"
               ).encode() + payload
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks), (on_socket(sock) if on_socket else None)
