"""Ask: retrieve, then answer with `[n]` citations; JSON or server-sent events.

The stream sends `token` events (`{"text": ...}`) as the answer is produced,
then one `citations` event and a final `done` event naming the generator.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import TypeAdapter
from sse_starlette import EventSourceResponse

from ragcorp_service.api.bodies import body_schema, json_body
from ragcorp_service.api.deps import AskAllowed, StateDep
from ragcorp_service.api.schemas import AskIn, AskOut
from ragcorp_service.generation.citations import Citation

router = APIRouter(prefix="/v1", tags=["ask"])
_CITATIONS = TypeAdapter(list[Citation])


@router.post(
    "/ask",
    response_model=AskOut,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream is true"}},
    openapi_extra=body_schema(AskIn),
)
async def ask(caller: AskAllowed, state: StateDep, body: Annotated[AskIn, json_body(AskIn)]) -> Any:
    if not body.stream:
        answer = await state.answering.answer(body.to_request(caller.collections))
        return AskOut(answer=answer.text, citations=answer.citations, generator=answer.generator, mode=body.mode)
    stream = await state.answering.stream(body.to_request(caller.collections))

    async def events() -> AsyncIterator[dict[str, str]]:
        async for piece in stream.pieces():
            yield {"event": "token", "data": json.dumps({"text": piece})}
        citations = _CITATIONS.dump_python(stream.citations(), mode="json")
        yield {"event": "citations", "data": json.dumps(citations)}
        yield {"event": "done", "data": json.dumps({"generator": stream.generator.name, "mode": body.mode})}

    return EventSourceResponse(events(), ping=15)
