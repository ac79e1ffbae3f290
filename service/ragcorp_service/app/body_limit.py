"""Reject request bodies over MAX_REQUEST_BYTES before they are read into memory, and bodies
that stall (REQUEST_BODY_TIMEOUT_SECONDS between pieces) or take too long in all
(REQUEST_BODY_DEADLINE_SECONDS) with a 408.

Declared lengths are refused at once; chunked bodies are counted as they
stream and cut off at the limit. Pure ASGI, so it also guards multipart parsing.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragcorp_service.api.errors import RequestTooLarge


class BodyTooLarge(RequestTooLarge):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"request body exceeds the limit of {max_bytes} bytes (MAX_REQUEST_BYTES)")


class BodyTooSlow(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on (as it does RequestTooLarge)."""

    def __init__(self, detail: str) -> None:
        super().__init__(408, detail)


#: Headers a request may carry (their bytes are bounded by MAX_REQUEST_HEADER_BYTES).
MAX_REQUEST_HEADERS = 100


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        stall_seconds: float = 30.0,
        max_header_bytes: int = 16_384,
        deadline_seconds: float = 120.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.stall_seconds = stall_seconds
        self.deadline_seconds = deadline_seconds
        self.max_header_bytes = max_header_bytes

    async def _reject(self, send: Send, status: int = 413, detail: str | None = None) -> None:
        body = json.dumps({"detail": detail or BodyTooLarge(self.max_bytes).detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if len(headers) > MAX_REQUEST_HEADERS or header_bytes > self.max_header_bytes:
            detail = (
                f"request headers exceed {MAX_REQUEST_HEADERS} fields or "
                f"{self.max_header_bytes} bytes (MAX_REQUEST_HEADER_BYTES)"
            )
            await self._reject(send, 431, detail)
            return
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return

        received = 0
        body_complete = False
        response_started = False
        deadline = asyncio.get_running_loop().time() + self.deadline_seconds

        async def counting_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # later reads wait for a disconnect (streaming responses): never time them
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(min(self.stall_seconds, left), 0))
            except TimeoutError:
                if left <= self.stall_seconds:
                    detail = f"the request body took over {self.deadline_seconds:g} s (REQUEST_BODY_DEADLINE_SECONDS)"
                else:
                    detail = f"the request body stalled for {self.stall_seconds:g} s (REQUEST_BODY_TIMEOUT_SECONDS)"
                raise BodyTooSlow(detail) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._reject(send)
        except BodyTooSlow as exc:
            if not response_started:
                await self._reject(send, 408, str(exc.detail))
