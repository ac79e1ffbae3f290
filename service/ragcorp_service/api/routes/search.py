"""Search: ranked chunks for a query, in hybrid, vector or keyword mode."""

from __future__ import annotations

from fastapi import APIRouter

from ragcorp_service.api.deps import AskAllowed, StateDep
from ragcorp_service.api.errors import InvalidRequest
from ragcorp_service.api.schemas import RetrievalOptions, SearchHit, SearchIn, SearchOut
from ragcorp_service.api.state import AppState
from ragcorp_service.retrieval import search as retrieval
from ragcorp_service.retrieval.results import RetrievedChunk

router = APIRouter(prefix="/v1", tags=["search"])


async def retrieve(state: AppState, query: str, options: RetrievalOptions) -> list[RetrievedChunk]:
    """Shared by search and ask: bound-check, embed the query when the mode needs it, rank."""
    if options.top_k > state.settings.max_top_k:
        limit = state.settings.max_top_k
        message = f"Input should be less than or equal to {limit} (MAX_TOP_K)"
        raise InvalidRequest(["top_k"], message, "less_than_equal", input=options.top_k)
    request = retrieval.SearchRequest(
        query=query,
        top_k=options.top_k,
        mode=options.mode,
        collection=options.collection,
        filters=options.filters,
    )
    embedding = None if options.mode == "keyword" else await state.providers.embedder.embed_query(query)
    with state.tracer.start_as_current_span("retrieve", attributes={"ragcorp.mode": options.mode}):
        return await retrieval.search(state.reader, request, embedding, state.tuning)


def hit(chunk: RetrievedChunk) -> SearchHit:
    return SearchHit(**vars(chunk))


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, state: StateDep, _: AskAllowed) -> SearchOut:
    chunks = await retrieve(state, body.query, body)
    return SearchOut(mode=body.mode, results=[hit(c) for c in chunks])
