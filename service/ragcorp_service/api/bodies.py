"""JSON bodies read after authentication, and bounded per route.

FastAPI reads and parses a declared body before any dependency runs, so an unauthenticated
24 MB search once got its 401 after pushing the process from 434 MB to 908 MB. Routes that
take `json_body(...)` after their key dependency read nothing until the key and scope are
checked, and then at most their own limit: a search or a question needs kilobytes.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ragcorp_service.api.errors import RequestTooLarge
from ragcorp_service.api.json_values import json_safe

M = TypeVar("M", bound=BaseModel)
#: A search, a question or a PATCH: a query of 2,000 characters and 16 KB of metadata filters fit.
SMALL_BODY_BYTES = 65_536


def unprocessable(exc: ValidationError) -> RequestValidationError:
    """Pydantic's errors located as FastAPI locates a body's (`["body", field, ...]`), for the
    app's validation-error handler to render like every other 422."""
    return RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()])


def parsed(model: type[M], raw: bytes) -> M:
    """As FastAPI parses a body: Python's JSON first (so `json_values` names NaN, lone
    surrogates and the like in its own words), then the model."""
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError covers bad JSON, bad UTF-8 and 4,300+ digit integers
        error = {"type": "json_invalid", "loc": ("body",), "msg": f"Invalid JSON: {json_safe(str(exc))}"}
        raise RequestValidationError([error]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise unprocessable(exc) from None


def json_body(model: type[M], max_bytes: int | None = SMALL_BODY_BYTES) -> Any:
    """A dependency giving the body as `model`; declare it after the route's key dependency.
    `max_bytes=None` leaves the bound to MAX_REQUEST_BYTES (the body-limit middleware's)."""

    async def read(request: Request) -> M:
        raw = bytearray()
        async for piece in request.stream():
            raw += piece
            if max_bytes is not None and len(raw) > max_bytes:
                raise RequestTooLarge(f"request body exceeds the limit of {max_bytes} bytes for {request.url.path}")
        return parsed(model, bytes(raw))

    return Depends(read)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The route's OpenAPI requestBody, since FastAPI no longer sees a body parameter."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
