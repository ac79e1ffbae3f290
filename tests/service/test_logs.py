"""The service's logs: JSON lines on the stderr of the moment."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from ragcorp_service.logs import configure_logging


def test_logs_follow_stderr_when_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream swapped after configuration (a supervisor, a test's capture) gets the records; the
    one there was at configuration may be closed, and writing to it would print a traceback instead."""
    configured_with = io.StringIO()
    monkeypatch.setattr(sys, "stderr", configured_with)
    configure_logging("INFO")
    configured_with.close()
    replacement = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replacement)
    logging.getLogger("ragcorp_service.test").info("still heard")
    [line] = replacement.getvalue().splitlines()
    assert json.loads(line)["message"] == "still heard"


def test_python_warnings_are_json_lines_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library's warning at start-up is one more JSON line, not a bare line between them."""
    import warnings

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.captureWarnings(False)  # pytest restores `showwarning` after each test; logging would not redo it
    configure_logging("INFO")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("an old API", DeprecationWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["logger"] == "py.warnings" and "an old API" in record["message"]
