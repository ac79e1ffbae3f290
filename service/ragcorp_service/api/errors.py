"""Every error leaves as JSON `{"detail": ...}` with a status that says whose fault it is.

A database that is down is a 503 (retry later), not a 500: clients and load
balancers treat those differently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ragcorp_service.api.json_values import clean_errors
from ragcorp_service.api.service_metrics import ServiceMetrics
from ragcorp_service.ingestion.parsing import ParseLimitExceeded, UnreadableFile
from ragcorp_service.providers.unavailable import ProviderUnavailable
from ragcorp_service.services.errors import Forbidden, OverLimit

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
)


class RequestTooLarge(HTTPException):
    """413 with a message naming the limit. An HTTPException, so FastAPI's own handler renders
    it, and its body parsing passes it on instead of turning it into a 400."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class InvalidRequest(HTTPException):
    """422 for a request that parsed but cannot be served as asked, in the shape of every other 422
    (a field-validation error's): `[{"type", "loc", "msg", "input"?}]`, so clients parse one shape."""

    def __init__(self, loc: Sequence[str | int], message: str, kind: str = "value_error", **given: Any) -> None:
        error: dict[str, Any] = {"type": kind, "loc": ["body", *loc], "msg": message}
        if "input" in given:
            error["input"] = given["input"]
        super().__init__(422, clean_errors([error]))


def install_error_handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes inputs as they came, and `inf` or "\ud800" cannot be encoded.
        return JSONResponse({"detail": clean_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """The last resort: a bug is still a JSON error, logged with its traceback."""
        log.exception("unhandled error", extra={"path": request.url.path, "error": type(exc).__name__})
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(OverLimit)
    async def over_limit(_: Request, exc: OverLimit) -> JSONResponse:
        error = {"type": "less_than_equal", "loc": ["body", exc.field], "msg": exc.message, "input": exc.value}
        return JSONResponse({"detail": clean_errors([error])}, status_code=422)

    @app.exception_handler(ProviderUnavailable)
    async def provider_down(request: Request, exc: ProviderUnavailable) -> JSONResponse:
        log.warning("provider unavailable", extra={"path": request.url.path, "provider": exc.what})
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(ParseLimitExceeded)
    async def too_costly(_: Request, exc: ParseLimitExceeded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(UnreadableFile)
    async def unreadable(_: Request, exc: UnreadableFile) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=415)

    for exception_type in DATABASE_UNAVAILABLE:

        @app.exception_handler(exception_type)
        async def database_down(request: Request, exc: Exception) -> JSONResponse:
            metrics.db_connection_errors.inc()
            log.error("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
            return JSONResponse(
                {"detail": "the database is unavailable; try again shortly"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
