"""A real HTTP server on loopback that records what webhooks are sent, for notification tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    #: (path, parsed JSON body) in arrival order.
    received: list[tuple[str, Any]] = field(default_factory=list)
    #: path -> statuses to answer before 200 (say [500, 500]: two failures, then success).
    answers: dict[str, list[int]] = field(default_factory=dict)

    def bodies(self, path: str) -> list[Any]:
        return [body for at, body in self.received if at == path]


@contextmanager
def receiving(host: str = "127.0.0.1") -> Iterator[Receiver]:
    """On `host`: loopback for an operator in this process; the node's address for Pods, which
    have network namespaces of their own."""
    receiver = Receiver("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            with lock:
                pending = receiver.answers.get(self.path) or []
                status = pending.pop(0) if pending else 200
                receiver.received.append((self.path, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer((host, 0), Handler)
    receiver.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
