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
    """The answer piece by piece; `citations()` once the pieces are all read. The first piece is
    read before the stream is handed out, so a generator that cannot answer fails the request
    (a 503) instead of a stream already begun."""

    generator: Generator
    contexts: list[RetrievedChunk]
    _source: AsyncIterator[str]
    _pieces: list[str] = field(default_factory=list)

    @classmethod
    async def start(cls, generator: Generator, question: str, contexts: list[RetrievedChunk]) -> AnswerStream:
        stream = cls(generator, contexts, generator.stream(question, contexts))
        first = await anext(stream._source, None)
        if first is not None:
            stream._pieces.append(first)
        return stream

    async def pieces(self) -> AsyncIterator[str]:
        for piece in list(self._pieces):
            yield piece
        async for piece in self._source:
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
        return await AnswerStream.start(self.generator, request.query, contexts)
