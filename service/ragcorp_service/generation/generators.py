"""The generator interface the API talks to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ragcorp_service.retrieval.results import RetrievedChunk


class Generator(Protocol):
    #: Reported in every answer, e.g. "extractive" or "gemini:gemini-2.5-flash".
    name: str

    def stream(self, question: str, contexts: list[RetrievedChunk]) -> AsyncIterator[str]:
        """Yield the answer in pieces; the pieces joined are the whole answer."""
        ...

    async def check(self) -> None:
        """Raise when the generator cannot answer now (readiness probe)."""
        ...


async def complete(generator: Generator, question: str, contexts: list[RetrievedChunk]) -> str:
    return "".join([piece async for piece in generator.stream(question, contexts)])
