"""Waiting for what another process or thread does, without guessing how long it takes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll until `check` returns something truthy; return it. The bound is generous on purpose:
    it only decides how long a failing test takes, and a loaded CI machine must not fail a good one."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
