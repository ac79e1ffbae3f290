"""Test-wide settings: everything offline, and the service's log setup kept to the test that made it."""

import logging
import os
from collections.abc import Iterator

import pytest

from ragcorp_service.logs import StderrHandler

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _service_logging_ends_with_its_test() -> Iterator[None]:
    """`ragcorp-service`'s `main()` configures the process's root logger, as a CLI should; in one test
    process that would make every later test's libraries log JSON into its captured stderr."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
