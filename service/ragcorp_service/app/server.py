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


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head does not arrive in time."""

    head_timeout: float = 10.0
    _head_deadline: asyncio.TimerHandle | None = None

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_late)

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self._awaiting_head():  # the next request on a kept-alive connection
            self._head_deadline = self.loop.call_later(self.head_timeout, self._head_late)
        super().data_received(data)
        if self._head_deadline is not None and not self._awaiting_head():
            self._head_deadline.cancel()  # the head is in; the body has its own timeout
            self._head_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

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
