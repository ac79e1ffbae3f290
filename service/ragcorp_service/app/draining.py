"""Leaving a load balancer's rotation without dropping a request.

HTTP/1.1 clients keep connections open; a Service (or any balancer) stops sending new
connections to a Pod that is going away, but connections opened earlier stay put, and
when the server then closes an idle one a request already on its way fails ("server
disconnected"). So on SIGTERM the service first drains: for SHUTDOWN_DRAIN_SECONDS it
keeps serving, answers every request with `Connection: close` (the client reconnects,
to a Pod that stays) and fails readiness; only then does uvicorn's shutdown begin.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Drain:
    active: bool = False


class DrainMiddleware:
    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.active:
            await self.app(scope, receive, send)
            return

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)
