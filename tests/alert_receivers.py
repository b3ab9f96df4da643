"""Real receivers for alert notices in the tests: an HTTP server standing in for a
webhook receiver or Slack (it keeps every POST, checking the signature when it knows the
secret), and an SMTP server (aiosmtpd) keeping every mail."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from servers import free_port

from heliograph.alerts.channels import SIGNATURE_HEADER, verify


class HttpReceiver:
    """POSTs kept as {"path", "headers", "body" (parsed JSON), "raw", "signed"}. Starts
    listening only when start() is called, so a test can have a receiver that is down."""

    def __init__(self, port: int | None = None, secret: str | None = None) -> None:
        self.port = port or free_port()
        self.secret = secret
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                signature = self.headers.get(SIGNATURE_HEADER)
                post = {"path": self.path, "headers": dict(self.headers), "raw": raw,
                        "body": json.loads(raw),
                        "signed": bool(receiver.secret and signature
                                       and verify(receiver.secret, raw, signature))}
                with receiver.lock:
                    receiver.posts.append(post)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.posts)} posts to {self.url}, expected {count}")


class SmtpReceiver:
    """aiosmtpd on a free port; messages parsed as email.message.EmailMessage."""

    def __init__(self) -> None:
        self.messages: list = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                receiver.messages.append(email.message_from_bytes(
                    envelope.content, policy=email.policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} mails received, expected {count}")

    def stop(self) -> None:
        self.controller.stop()


def alerts_config(smtp: SmtpReceiver) -> str:
    """A gateway config's alert sections: evaluated every 0.3 s, mail to `smtp`."""
    return f"""
[alerts]
interval_s = 0.3

[smtp]
host = "127.0.0.1"
port = {smtp.port}
starttls = false
from = "alerts@heliograph.test"
"""
