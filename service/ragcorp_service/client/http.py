"""A thin async HTTP client for the service's API, with errors made readable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

MAX_RATE_LIMIT_RETRIES = 30


class ServiceError(RuntimeError):
    """The service answered with an error; the message carries its status and detail, on one line."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def detail_text(detail: Any) -> str:
    """An error body's `detail` as one readable line: validation errors as `field: message`."""
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if not isinstance(error, dict):
                parts.append(str(error))
                continue
            location = [str(part) for part in error.get("loc", []) if part != "body"]
            # A file's errors name the file in their message; its index in the upload says less.
            where = "" if location[:1] == ["files"] else ".".join(location)
            parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
        return "; ".join(parts)
    return " ".join(str(detail).split())


class RagCorpClient:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 300.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    async def __aenter__(self) -> RagCorpClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    @staticmethod
    def _checked(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                detail = detail_text(response.json().get("detail"))
            except (ValueError, AttributeError):
                detail = detail_text(response.text[:500])
            raise ServiceError(
                f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}: {detail}",
                response.status_code,
                detail,
            )
        return response.json() if response.content else None

    async def _post(self, path: str, *, ingest: bool = False, **kwargs: Any) -> httpx.Response:
        """POST, waiting out rate limits: a 429's Retry-After says when to try again. An ingest
        also waits out a 503 (every ingest slot busy, MAX_CONCURRENT_INGESTS)."""
        waits = {429, 503} if ingest else {429}
        for _ in range(MAX_RATE_LIMIT_RETRIES):
            response = await self._http.post(path, **kwargs)
            if response.status_code not in waits:
                return response
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        return response

    async def upload(self, paths: list[Path], collection: str) -> list[dict[str, Any]]:
        files = [("files", (p.name, p.read_bytes())) for p in paths]
        response = await self._post("/v1/documents", ingest=True, files=files, data={"collection": collection})
        documents: list[dict[str, Any]] = self._checked(response)["documents"]
        return documents

    async def ingest_batch(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = await self._post("/v1/documents/batch", ingest=True, json={"documents": documents})
        stored: list[dict[str, Any]] = self._checked(response)["documents"]
        return stored

    async def search(self, query: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._checked(await self._post("/v1/search", json={"query": query, **options}))
        return result

    async def ask(self, question: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._checked(await self._post("/v1/ask", json={"question": question, **options}))
        return result

    async def ask_stream(self, question: str, **options: Any) -> AsyncIterator[tuple[str, Any]]:
        """Yield (event, data) pairs from the SSE answer."""
        body = {"question": question, "stream": True, **options}
        async with self._http.stream("POST", "/v1/ask", json=body) as response:
            if response.status_code >= 400:
                await response.aread()
                self._checked(response)
            event = "message"
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    yield event, json.loads(line.removeprefix("data:").strip())
