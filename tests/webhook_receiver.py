"""A webhook receiver for the tests: an HTTP server on 127.0.0.1 that keeps what it got, can
answer any status, and can be down (nothing listening on its port) and come back on the
same port."""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import free_port


def rfc2104_hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 written out from RFC 2104, not with the hmac module the appliance uses:
    H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), B = 64."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\x00")
    outer = bytes(b ^ 0x5C for b in key)
    inner = bytes(b ^ 0x36 for b in key)
    return hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()


@dataclass
class Received:
    headers: dict
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        timestamp = self.headers["tsunagu-timestamp"]
        expected = rfc2104_hmac_sha256(secret.encode(), f"{timestamp}.".encode() + self.body)
        return self.headers["tsunagu-signature"] == f"sha256={expected}"


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append(Received(
                        {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # quiet: the test reads `received`
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict]:
        with self._lock:
            return [r.event for r in self.received]
