"""What is running: the smoke test compares `schema_revision` with the migration Job's."""

from __future__ import annotations

from fastapi import APIRouter

from ragcorp_service.api.deps import StateDep
from ragcorp_service.api.schemas import VersionOut
from ragcorp_service.db.migrations import current_revision

router = APIRouter(tags=["meta"])


@router.get("/version", response_model=VersionOut)
async def version(state: StateDep) -> VersionOut:
    embedder = state.providers.embedder
    return VersionOut(
        version=state.settings.ragcorp_version,
        schema_revision=await current_revision(state.pool),
        embedding_model=embedder.model,
        embedding_dimensions=embedder.dimensions,
        generator=state.providers.generator.name,
    )
