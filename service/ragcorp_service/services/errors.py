"""What a use case refuses, in words the HTTP layer turns into a 4xx (see `api.errors`)."""

from __future__ import annotations

from typing import Any


class Forbidden(PermissionError):
    """The caller's API key may not use this collection (a 403 saying which)."""


class OverLimit(ValueError):
    """A request asks for more than a configured limit allows (a 422 naming the field and the setting)."""

    def __init__(self, field: str, message: str, value: Any) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.value = value
