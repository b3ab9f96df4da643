"""The locks that make a job run exactly once.

- FileLock: an flock on a file in the journal folder. The host holds one for its whole
  life, which makes it the only host for that folder (that machine), and makes every
  machine-scoped job exactly-once. The kernel drops it when the holder dies, however.
- PostgresLock: a session advisory lock on a connection of its own; PostgreSQL drops it
  when that session ends (the host died, or the network did and keepalives noticed).
- RedisLock: a key with an expiry that its holder renews; a dead holder's key expires.
- HeldLock: always held, for SQLite, where replicas cannot share the database and the
  machine lock already is the deployment lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("heliograph.background")

# The flock the background host holds in the journal folder (host.py), which a worker
# tries each second (supervisor.py). Here, not in host.py: a worker imports this module
# and not the host's (argparse and the job list, ~0.35 MB a worker).
HOST_LOCK = "background.lock"


class FileLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd = -1

    def try_acquire(self) -> bool:
        fd = try_flock(self.path)
        if fd is None:
            return False
        self.adopt(fd)
        return True

    def adopt(self, fd: int) -> None:
        """Hold the lock through fd, already locked (by the worker that started us: the
        flock belongs to the open file, which this process inherited)."""
        self._fd = fd
        # Who holds it, for people (and tests) looking; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def try_flock(path: Path) -> int | None:
    """An fd holding the exclusive flock on path, or None while someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class HeldLock:
    held = True

    def acquire_or_renew(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _advisory_key(name: str) -> int:
    # A stable signed 64-bit key per job name; distinct from the migration lock's key
    # (store/postgres.py) with overwhelming probability. hashlib imported here: it maps
    # OpenSSL's libcrypto (~3.5 MB RSS), which a host on SQLite never needs.
    import hashlib

    digest = hashlib.blake2b(f"heliograph-job:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLock:
    def __init__(self, database_url: str, name: str):
        self.database_url = database_url
        self.key = _advisory_key(name)
        self.held = False
        self._conn: Any = None  # a psycopg.Connection (imported only when used)

    def acquire_or_renew(self) -> bool:
        import psycopg

        try:
            if self._conn is None:
                self.held = False
                # Keepalives so that a holder cut off by the network loses the lock on
                # the server within ~10 s instead of the kernel's two hours.
                self._conn = psycopg.connect(self.database_url, autocommit=True,
                                             connect_timeout=5, keepalives=1,
                                             keepalives_idle=5, keepalives_interval=2,
                                             keepalives_count=2)
            if self.held:
                self._conn.execute("SELECT 1")  # the lock lives as long as this session
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)",
                                         (self.key,)).fetchone()
                self.held = bool(row and row[0])
        except psycopg.Error as exc:
            if self.held:
                log.warning("lost the deployment lock (database unreachable: %s)", exc)
            self._drop_connection()
        return self.held

    def _drop_connection(self) -> None:
        self.held = False
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def release(self) -> None:
        self._drop_connection()  # ending the session releases its advisory locks


# Take the key if it is free, or extend it if it is already ours, in one step.
_ACQUIRE_OR_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisLock:
    """Held while the key holds our token. The host renews it every ttl/3; if it cannot
    (Redis unreachable), it stops running the job at once, while the key still blocks
    the other replicas until it expires — so two holders never overlap."""

    def __init__(self, redis_url: str, name: str, ttl_s: float = 10.0,
                 prefix: str = "heliograph:"):
        import redis

        self.key = f"{prefix}lock:{name}"
        self.ttl_ms = int(ttl_s * 1000)
        self.token = uuid.uuid4().hex
        self.held = False
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2,
                                            socket_connect_timeout=2)

    def acquire_or_renew(self) -> bool:
        import redis

        try:
            self.held = bool(self._client.eval(_ACQUIRE_OR_RENEW, 1, self.key, self.token,
                                               self.ttl_ms))
        except redis.RedisError as exc:
            if self.held:
                log.warning("lost the deployment lock (Redis unreachable: %s)", exc)
            self.held = False
        return self.held

    def release(self) -> None:
        import redis

        self.held = False
        try:
            self._client.eval(_RELEASE, 1, self.key, self.token)
        except redis.RedisError:
            pass  # it expires
        self._client.close()


def deployment_lock(name: str, database_url: str, redis_url: str, ttl_s: float):
    """The lock that makes job `name` run once across replicas sharing the database."""
    if redis_url:
        return RedisLock(redis_url, name, ttl_s)
    if database_url.startswith(("postgresql:", "postgres:")):
        return PostgresLock(database_url, name)
    return HeldLock()
