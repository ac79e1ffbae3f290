"""Search: ranked chunks for a query, in hybrid, vector or keyword mode."""

from __future__ import annotations

from fastapi import APIRouter

from ragcorp_service.api.deps import AskAllowed, StateDep
from ragcorp_service.api.schemas import SearchIn, SearchOut

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, state: StateDep, caller: AskAllowed) -> SearchOut:
    chunks = await state.retrieval.search(body.to_request(caller.collections))
    return SearchOut(mode=body.mode, results=chunks)
