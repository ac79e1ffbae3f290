"""Search as a use case: bound the request, embed the query when the mode needs it, rank."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import trace

from ragcorp_service.providers.embedders import Embedder
from ragcorp_service.retrieval import search as ranking
from ragcorp_service.retrieval.request import SearchRequest
from ragcorp_service.retrieval.results import RetrievedChunk
from ragcorp_service.retrieval.search import ReadPool, SearchTuning
from ragcorp_service.services.documents import check_collection
from ragcorp_service.services.errors import OverLimit


@dataclass(frozen=True)
class RetrievalService:
    reader: ReadPool
    embedder: Embedder
    tracer: trace.Tracer
    #: MAX_TOP_K: a client cannot ask for more results than this.
    max_top_k: int
    tuning: SearchTuning = field(default_factory=SearchTuning)

    async def search(self, request: SearchRequest) -> list[RetrievedChunk]:
        if request.collection is not None:
            check_collection(request.allowed_collections, request.collection)
        if request.top_k > self.max_top_k:
            message = f"Input should be less than or equal to {self.max_top_k} (MAX_TOP_K)"
            raise OverLimit("top_k", message, request.top_k)
        embedding = None if request.mode == "keyword" else await self.embedder.embed_query(request.query)
        with self.tracer.start_as_current_span("retrieve", attributes={"ragcorp.mode": request.mode}):
            return await ranking.search(self.reader, request, embedding, self.tuning)
