"""The service as its tests build it: settings that ignore the environment, and client factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ragcorp_service.settings import Settings

#: `client_for(**overrides)`: a client of an app built with other settings (limits, providers).
ClientFactory = Callable[..., Any]


def make_settings(database_url: str | None, **overrides: Any) -> Settings:
    """Settings for a test: explicit values win over whatever the environment holds."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "google_api_key": None,
        "api_keys": None,
        "embedding_model": None,
        "embedding_dimensions": None,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)
