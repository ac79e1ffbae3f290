"""How `ragcorp-service serve` runs uvicorn: trusted proxies, header limits and read timeouts.

uvicorn bounds the bytes of a request head (h11's incomplete-event size) but waits
forever for a head that trickles in, and the ASGI app waits forever for a body that
does: a few hundred such connections (slowloris) hold every worker. The protocol
below closes a connection whose request head is not complete within
REQUEST_HEADER_TIMEOUT_SECONDS; `BodyLimitMiddleware` answers 408 to a body that stalls
for REQUEST_BODY_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ragcorp_service.app.draining import Drain
from ragcorp_service.settings import Settings


def head_problem(head: bytes) -> str | None:
    """Why a request head (up to its blank line) is refused before h11 reads it. h11 accepts
    these, and a proxy in front may read them otherwise (request smuggling, RFC 9112 §6.1, §5.2):
    both Content-Length and Transfer-Encoding, lines ended by a bare LF, folded header lines."""
    if b"\n" in head.replace(b"\r\n", b""):
        return "lines must end with CRLF"
    lines = head.split(b"\r\n")
    if any(line[:1] in (b" ", b"\t") for line in lines[1:] if line):
        return "folded header lines are not accepted"
    names = {line.split(b":", 1)[0].strip().lower() for line in lines[1:] if b":" in line}
    if b"content-length" in names and b"transfer-encoding" in names:
        return "Content-Length and Transfer-Encoding must not both be sent"
    return None


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head does not arrive in time,
    and refusing heads a proxy could read differently (`head_problem`) with a 400 and a close."""

    head_timeout: float = 10.0
    _head_deadline: asyncio.TimerHandle | None = None
    _head: bytes = b""

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_late)

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self._awaiting_head():  # the next request on a kept-alive connection
            self._head_deadline = self.loop.call_later(self.head_timeout, self._head_late)
        if self._awaiting_head() and self._refused(data):
            return
        super().data_received(data)
        if self._head_deadline is not None and not self._awaiting_head():
            self._head_deadline.cancel()  # the head is in; the body has its own timeout
            self._head_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def _refused(self, data: bytes) -> bool:
        """Checks the head once it is whole (its first blank line, CRLF or bare LF); True when it
        was refused and the connection is closing."""
        self._head += data
        ends = [end for end in (self._head.find(b"\r\n\r\n"), self._head.find(b"\n\n")) if end >= 0]
        if not ends:
            return False
        head, self._head = self._head[: min(ends)], b""
        problem = head_problem(head)
        if problem is None:
            return False
        body = f'{{"detail": "malformed request: {problem}"}}'.encode()
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.transport.close()
        return True

    def _head_late(self) -> None:
        self._head_deadline = None
        if self._awaiting_head() and not self.transport.is_closing():
            self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining for `drain_seconds` after SIGTERM before it shuts down
    (see `draining`); SIGINT, or a second signal, stops at once as uvicorn does."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.drain.active or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self.drain.active = True
        later = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        later.daemon = True
        later.start()


def server(app: Any, settings: Settings) -> DrainingServer:
    """The server `serve` runs (tests start the same one)."""
    return DrainingServer(server_config(app, settings), app.state.drain, settings.shutdown_drain_seconds)


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration `serve` runs with."""

    class Protocol(HeadTimeoutProtocol):
        head_timeout = settings.request_header_timeout_seconds

    trusted = settings.forwarded_allow_ips.strip()
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        http=Protocol,
        h11_max_incomplete_event_size=settings.max_request_header_bytes,
        # X-Forwarded-For picks the client (and so its rate-limit bucket) only from proxies named here.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=20,
        limit_concurrency=settings.max_connections,
    )
