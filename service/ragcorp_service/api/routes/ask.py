"""Ask: retrieve, then answer with `[n]` citations; JSON or server-sent events.

The stream sends `token` events (`{"text": ...}`) as the answer is produced,
then one `citations` event and a final `done` event naming the generator.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from ragcorp_service.api.deps import AskAllowed, StateDep
from ragcorp_service.api.routes.search import retrieve
from ragcorp_service.api.schemas import AskIn, AskOut, CitationOut
from ragcorp_service.generation.citations import citations_for
from ragcorp_service.generation.generators import complete

router = APIRouter(prefix="/v1", tags=["ask"])


def _citations(answer: str, contexts: list[Any]) -> list[CitationOut]:
    return [CitationOut(**asdict(c)) for c in citations_for(answer, contexts)]


@router.post(
    "/ask",
    response_model=AskOut,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream is true"}},
)
async def ask(body: AskIn, state: StateDep, _: AskAllowed) -> Any:
    contexts = await retrieve(state, body.question, body)
    generator = state.providers.generator
    if not body.stream:
        answer = await complete(generator, body.question, contexts)
        return AskOut(answer=answer, citations=_citations(answer, contexts), generator=generator.name, mode=body.mode)

    async def events() -> AsyncIterator[dict[str, str]]:
        pieces: list[str] = []
        async for piece in generator.stream(body.question, contexts):
            pieces.append(piece)
            yield {"event": "token", "data": json.dumps({"text": piece})}
        citations = _citations("".join(pieces), contexts)
        yield {"event": "citations", "data": json.dumps([c.model_dump(mode="json") for c in citations])}
        yield {"event": "done", "data": json.dumps({"generator": generator.name, "mode": body.mode})}

    return EventSourceResponse(events(), ping=15)
