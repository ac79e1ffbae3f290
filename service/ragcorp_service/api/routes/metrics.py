"""`GET /metrics` in Prometheus' text format (scope `metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragcorp_service.api.deps import MetricsAllowed, StateDep

router = APIRouter(tags=["meta"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(state: StateDep, _: MetricsAllowed) -> Response:
    row = await state.pool.fetchrow(
        "SELECT (SELECT count(*) FROM documents) AS documents,"
        " coalesce((SELECT chunk_count FROM corpus_stats), 0) AS chunks"
    )
    state.metrics.documents.set(row["documents"])
    state.metrics.chunks.set(row["chunks"])
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
