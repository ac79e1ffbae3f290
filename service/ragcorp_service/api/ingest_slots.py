"""Ingests at once, bounded: each may hold a body of MAX_REQUEST_BYTES and a parsing process.

Other routes' bodies are kilobytes (`bodies.SMALL_BODY_BYTES`); an ingest's can be 25 MB, and
three unauthenticated ones once took the process to 1.5 GB against the chart's 1 Gi limit. A
slot is taken after the key is checked and before the body is read, so a waiting request costs
a socket, not memory; one that waits past INGEST_SLOT_WAIT_SECONDS is a 503 with Retry-After
(the `ragcorp` client retries those).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from ragcorp_service.api.state import AppState

RETRY_AFTER_SECONDS = 5


async def ingest_slot(request: Request) -> AsyncIterator[None]:
    state: AppState = request.app.state.ragcorp
    settings = state.settings
    try:
        await asyncio.wait_for(state.ingest_slots.acquire(), settings.ingest_slot_wait_seconds)
    except TimeoutError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{settings.max_concurrent_ingests} ingests are already in progress (MAX_CONCURRENT_INGESTS); "
            "retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    try:
        yield
    finally:
        state.ingest_slots.release()


#: Declared after the route's key dependency: the slot is taken once the caller may ingest.
IngestSlot = Annotated[None, Depends(ingest_slot)]
