"""Ask as a use case: retrieve, generate an answer with `[n]` markers, resolve them to citations.

Retrieval happens before anything is returned, so a refused request (a limit, the database
down) fails as a whole even when the answer is streamed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ragcorp_service.generation.citations import Citation, citations_for
from ragcorp_service.generation.generators import Generator, complete
from ragcorp_service.retrieval.request import SearchRequest
from ragcorp_service.retrieval.results import RetrievedChunk
from ragcorp_service.services.retrieval import RetrievalService


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]
    generator: str


@dataclass
class AnswerStream:
    """The answer piece by piece; `citations()` once the pieces are all read."""

    generator: Generator
    question: str
    contexts: list[RetrievedChunk]
    _pieces: list[str] = field(default_factory=list)

    async def pieces(self) -> AsyncIterator[str]:
        async for piece in self.generator.stream(self.question, self.contexts):
            self._pieces.append(piece)
            yield piece

    def citations(self) -> list[Citation]:
        return citations_for("".join(self._pieces), self.contexts)


@dataclass(frozen=True)
class AnsweringService:
    retrieval: RetrievalService
    generator: Generator

    async def answer(self, request: SearchRequest) -> Answer:
        contexts = await self.retrieval.search(request)
        text = await complete(self.generator, request.query, contexts)
        return Answer(text, citations_for(text, contexts), self.generator.name)

    async def stream(self, request: SearchRequest) -> AnswerStream:
        contexts = await self.retrieval.search(request)
        return AnswerStream(self.generator, request.query, contexts)
