"""Dependencies as `Annotated` aliases, so routes declare what they use in their signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ragcorp_service.api.auth import require
from ragcorp_service.api.state import AppState
from ragcorp_service.security.api_keys import Principal
from ragcorp_service.settings import Settings


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
