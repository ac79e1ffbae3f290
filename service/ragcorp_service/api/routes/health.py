"""Probes: `/livez` (the process serves HTTP), `/healthz` (and the database answers: ready to
serve), `/healthz?full=true` (and the generator answers: for people, the smoke test, monitoring).

Kubernetes restarts a Pod whose liveness fails, so liveness depends on nothing outside the
process: a 30 s database outage must not restart every Pod. Readiness depends on the database
only: a Gemini outage fails the requests that need Gemini (503, Retry-After), not whole Pods
that can still list, read and search. While draining after SIGTERM, `/healthz` fails so the
Pod leaves its Service while it finishes what it has.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ragcorp_service.api.deps import StateDep
from ragcorp_service.api.schemas import HealthOut

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 5.0


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        outcome: dict[str, Any] = {"status": "ok"}
    except Exception as exc:  # any failure is the dependency's state, reported, not raised
        outcome = {"status": "unavailable", "error": type(exc).__name__}
    outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return outcome


@router.get("/livez", response_model=HealthOut)
async def livez() -> HealthOut:
    return HealthOut(status="ok", checks={})


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def healthz(request: Request, state: StateDep, full: bool = False) -> JSONResponse:
    checks = {"database": await _timed(state.pool.fetchval("SELECT 1"))}
    if state.reader.pool is not state.pool:  # DATABASE_READ_URL: searches fail without the replica
        checks["database_read"] = await _timed(state.reader.pool.fetchval("SELECT 1"))
    if full:
        generator = state.providers.generator
        checks["generator"] = await _timed(generator.check())
        checks["generator"]["name"] = generator.name
    if request.app.state.drain.active:  # shutting down: out of rotation, while still serving
        checks["shutdown"] = {"status": "draining"}
    healthy = all(check["status"] == "ok" for check in checks.values())
    body = HealthOut(status="ok" if healthy else "unavailable", checks=checks)
    if healthy:
        return JSONResponse(body.model_dump())
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
