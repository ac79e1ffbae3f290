"""A small fake of the Gemini REST API on 127.0.0.1, for the real google-genai client.

It speaks the wire format the SDK uses (batchEmbedContents, generateContent,
streamGenerateContent with alt=sse, models.get), computes deterministic
bag-of-words embeddings so that retrieval through it is meaningful, and can be
told to fail the next requests with given status codes to exercise retries.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import serving

WORD = re.compile(r"[a-z0-9]+")
MODEL_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/")


def bag_of_words_embedding(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class FakeGemini:
    url: str = ""
    failures: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    answer: str = "According to the context, the answer is in passage [1]."

    def fail_next(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def _maybe_fail(self) -> Response | None:
        if self.failures:
            status = self.failures.pop(0)
            return JSONResponse({"error": {"code": status, "message": "injected", "status": "UNAVAILABLE"}}, status)
        return None

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if request.headers.get("x-goog-api-key") != "test-gemini-key":
            return JSONResponse({"error": {"code": 401, "message": "bad key", "status": "UNAUTHENTICATED"}}, 401)
        failure = self._maybe_fail()
        if failure is not None:
            return failure
        model, _, method = MODEL_PATH.sub("", path).partition(":")
        if request.method == "GET":
            return JSONResponse({"name": f"models/{model}", "displayName": model})
        body = await request.json()
        if method == "batchEmbedContents":
            return JSONResponse(
                {
                    "embeddings": [
                        {
                            "values": bag_of_words_embedding(
                                " ".join(p["text"] for p in r["content"]["parts"]), r["outputDimensionality"]
                            )
                        }
                        for r in body["requests"]
                    ]
                }
            )
        if method == "generateContent":
            return JSONResponse(self._candidate(self.answer))
        if method == "streamGenerateContent":
            return StreamingResponse(self._stream(), media_type="text/event-stream")
        return JSONResponse({"error": {"code": 404, "message": path, "status": "NOT_FOUND"}}, 404)

    @staticmethod
    def _candidate(text: str) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}

    async def _stream(self) -> AsyncIterator[bytes]:
        words = self.answer.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            yield f"data: {json.dumps(self._candidate(piece))}\r\n\r\n".encode()


@contextmanager
def running_fake_gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    app = Starlette(routes=[Route("/{path:path}", fake.handle, methods=["GET", "POST"])])
    with serving(app) as url:
        fake.url = url
        yield fake
