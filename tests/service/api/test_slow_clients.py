"""Slow and oversized clients against the server `ragcorp-service serve` runs (real uvicorn, real sockets)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from ragcorp_service.app.main import create_app
from ragcorp_service.app.server import DrainingServer
from ragcorp_service.app.server import server as serve
from ragcorp_service.settings import Settings
from tests.support.servers import free_port
from tests.support.waiting import eventually


@contextmanager
def served(settings: Settings) -> Iterator[tuple[int, DrainingServer]]:
    port = free_port()
    settings = settings.model_copy(update={"port": port})
    server = serve(create_app(settings), settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield port, server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def slow_limits(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"request_header_timeout_seconds": 1.0, "request_body_timeout_seconds": 1.0, "rate_limit_rps": 1.0}
    )


def read_all(connection: socket.socket) -> bytes:
    connection.settimeout(10)
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_request_head_that_trickles_in_is_cut_off(slow_limits: Settings) -> None:
    with served(slow_limits) as (port, _), socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # ... and the rest never comes
        started = time.monotonic()
        assert read_all(connection) == b""  # closed without an answer
        assert time.monotonic() - started < 10
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # others are served


def test_a_body_that_stalls_gets_a_408(slow_limits: Settings) -> None:
    with served(slow_limits) as (port, _), socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(
            b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"query": '
        )
        answer = read_all(connection)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"REQUEST_BODY_TIMEOUT_SECONDS" in answer


def test_request_headers_are_bounded(slow_limits: Settings) -> None:
    with served(slow_limits) as (port, _):
        big = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Filler": "y" * 20_000})
        assert big.status_code == 431 and "MAX_REQUEST_HEADER_BYTES" in big.json()["detail"]
        many = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={f"X-F{i}": "y" for i in range(150)})
        assert many.status_code == 431
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_forwarded_for_from_an_untrusted_peer_does_not_pick_the_rate_limit_bucket(slow_limits: Settings) -> None:
    """Anonymous mode limits per client address; a client on loopback naming others must not escape it."""
    with served(slow_limits) as (port, _):
        statuses = [
            httpx.post(
                f"http://127.0.0.1:{port}/v1/search",
                json={"query": "q", "mode": "keyword"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(4)
        ]
    assert 429 in statuses, statuses


@pytest.fixture
def restores_sse_exit_flag() -> Iterator[None]:
    """sse-starlette wraps uvicorn's exit handler to end every SSE stream in the process for good
    (a class-level flag): after a test drives that handler, later tests' streams must not inherit it."""
    from sse_starlette.sse import AppStatus

    yield
    AppStatus.should_exit = False


@pytest.mark.usefixtures("restores_sse_exit_flag")
def test_sigterm_drains_kept_alive_clients_before_shutting_down(settings: Settings) -> None:
    """After SIGTERM: still serving, every answer says Connection: close, readiness fails; then it stops."""
    drained = settings.model_copy(update={"shutdown_drain_seconds": 2.0})
    with served(drained) as (port, server), httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert client.get("/healthz").headers.get("connection") != "close"
        server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
        answer = client.get("/livez")
        assert answer.status_code == 200 and answer.headers["connection"] == "close"
        ready = client.get("/healthz")
        assert ready.status_code == 503 and ready.json()["checks"]["shutdown"]["status"] == "draining"
        assert not server.should_exit
        deadline = time.monotonic() + 30
        while not server.should_exit and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.should_exit, "the drain never ended"


def test_connections_past_max_connections_are_answered_503(settings: Settings) -> None:
    """Idle connections count: a flood of them gets 503s, not a process out of file descriptors."""
    capped = settings.model_copy(update={"max_connections": 3})
    with served(capped) as (port, _):
        url = f"http://127.0.0.1:{port}/livez"
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            eventually(lambda: httpx.get(url).status_code == 503, timeout=30)
        finally:
            for connection in idle:
                connection.close()
        eventually(lambda: httpx.get(url).status_code == 200, timeout=30)


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", b"both"),
        (b"GET /livez HTTP/1.1\nHost: x\n\n", b"CRLF"),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", b"folded"),
    ],
    ids=["content-length-and-transfer-encoding", "bare-lf", "folded-header"],
)
def test_heads_a_proxy_could_read_otherwise_are_refused_and_closed(settings: Settings, head: bytes, why: bytes) -> None:
    """Request smuggling shapes (RFC 9112 §6.1): a 400 naming the problem, then the connection closes."""
    with served(settings) as (port, _), socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(head)
        answer = read_all(connection)
    assert answer.startswith(b"HTTP/1.1 400") and why in answer and b"connection: close" in answer


def test_a_well_formed_head_split_across_packets_is_served(settings: Settings) -> None:
    with served(settings) as (port, _), socket.create_connection(("127.0.0.1", port)) as connection:
        for piece in (b"GET /livez HTTP/1.1\r\nHo", b"st: x\r\n", b"Connection: close\r\n\r\n"):
            connection.sendall(piece)
        assert read_all(connection).startswith(b"HTTP/1.1 200")
