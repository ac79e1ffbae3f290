"""Search: ranked chunks for a query, in hybrid, vector or keyword mode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from ragcorp_service.api.bodies import body_schema, json_body
from ragcorp_service.api.deps import AskAllowed, StateDep
from ragcorp_service.api.schemas import SearchIn, SearchOut

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search", response_model=SearchOut, openapi_extra=body_schema(SearchIn))
async def search(caller: AskAllowed, state: StateDep, body: Annotated[SearchIn, json_body(SearchIn)]) -> SearchOut:
    chunks = await state.retrieval.search(body.to_request(caller.collections))
    return SearchOut(mode=body.mode, results=chunks)
