"""A TCP relay the test controls, to put between the gateway and a shared service
(PostgreSQL) and cut it: an outage of the service as the gateway sees it, without
stopping the service everybody else uses."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.parse

import pytest
from servers import Gateway, free_port, postgres_database


class TcpRelay:
    def __init__(self, target_host: str, target_port: int, port: int | None = None):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Listen again (on the same port) and relay new connections."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener (new connections are refused) and every relayed
        connection (the gateway's open ones break)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:  # wakes the thread blocked in accept(), which close() alone does not
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    server.close()
                    continue
                self._sockets |= {client, server}
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):  # one side ended: end the other too
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._sockets -= {src, dst}
        src.close()


@contextlib.contextmanager
def gateway_behind_relay(upstream_url: str, tmp_path):
    """A gateway on a PostgreSQL database of its own, reached through a TcpRelay the test
    can cut; yields (gateway, relay). Skips without HELIOGRAPH_TEST_POSTGRES_URL."""
    postgres_url = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")
    if not postgres_url:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
    database_url, drop = postgres_database(postgres_url)
    parts = urllib.parse.urlsplit(database_url)
    relay = TcpRelay(parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = f"{parts.username}@127.0.0.1:{relay.port}" if parts.username \
        else f"127.0.0.1:{relay.port}"
    gw = Gateway(tmp_path, upstream_url, parts._replace(netloc=netloc).geturl())
    try:
        yield gw, relay
    finally:
        gw.stop()
        relay.close()
        drop()
