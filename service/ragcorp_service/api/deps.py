"""Dependencies as `Annotated` aliases, so routes declare what they use in their signature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError

from ragcorp_service.api.auth import require
from ragcorp_service.api.state import AppState
from ragcorp_service.security.api_keys import Principal
from ragcorp_service.settings import Settings


def refuse_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is a 422, not silently ignored: `?colection=x`
    would otherwise list every collection while the caller thinks it filtered."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    known = set(_query_names(dependant))
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "Unknown query parameter", "input": name}
                for name in dict.fromkeys(unknown)
            ]
        )


def _query_names(dependant: Dependant) -> Iterator[str]:
    """The query parameters a route declares, its dependencies' included."""
    yield from (param.alias for param in dependant.query_params)
    for dependency in dependant.dependencies:
        yield from _query_names(dependency)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ragcorp
    return state


def get_settings(state: Annotated[AppState, Depends(get_state)]) -> Settings:
    return state.settings


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
#: Callers allowed to write and delete documents.
IngestAllowed = Annotated[Principal, require("ingest")]
#: Callers allowed to read documents, search and ask.
AskAllowed = Annotated[Principal, require("ask")]
#: Callers allowed to scrape /metrics.
MetricsAllowed = Annotated[Principal, require("metrics")]
