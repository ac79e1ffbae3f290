"""Running Alembic from our own CLI and reading the schema revision.

Kubernetes runs `ragcorp-service db upgrade` as a Job; the operator learns the
resulting revision from the Job Pod's termination message, so every run that
changes the schema writes `{"schemaRevision": ...}` there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from ragcorp_service.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: Arbitrary but fixed: every migration run locks the same key ("RAGCORP" in ASCII).
MIGRATION_LOCK_KEY = 0x52414743_4F5250
TERMINATION_LOG = Path("/dev/termination-log")


@dataclass(frozen=True)
class MigrationTarget:
    """What env.py needs: where to connect and which embedder shapes the schema."""

    database_url: str
    embedding_model: str
    embedding_dimensions: int


def resolve_migration_target(attributes: Mapping[str, Any]) -> MigrationTarget:
    """The target set by our CLI, else one derived from the environment (plain `alembic`)."""
    target = attributes.get("target")
    if isinstance(target, MigrationTarget):
        return target
    settings = load_settings()
    return MigrationTarget(
        database_url=resolve_database_url(settings),
        embedding_model=settings.resolved_embedding_model,
        embedding_dimensions=settings.resolved_embedding_dimensions,
    )


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded server (started on demand)."""
    if settings.database_url:
        return settings.database_url
    from ragcorp_service.embedded_db import start_embedded_postgres

    return start_embedded_postgres(settings.ragcorp_data_dir, settings.embedded_pg_shared_buffers)


def alembic_config(target: MigrationTarget) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("ragcorp_service.migrations")))
    config.set_main_option("path_separator", "os")
    config.attributes["target"] = target
    return config


def target_for(settings: Settings, database_url: str | None = None) -> MigrationTarget:
    return MigrationTarget(
        database_url=database_url or resolve_database_url(settings),
        embedding_model=settings.resolved_embedding_model,
        embedding_dimensions=settings.resolved_embedding_dimensions,
    )


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config(MigrationTarget("", "", 0)))
    head = script.get_current_head()
    assert head is not None
    return head


def upgrade(target: MigrationTarget, revision: str = "head") -> str | None:
    command.upgrade(alembic_config(target), revision)
    return _report(target)


def downgrade(target: MigrationTarget, revision: str) -> str | None:
    command.downgrade(alembic_config(target), revision)
    return _report(target)


def _report(target: MigrationTarget) -> str | None:
    import asyncio

    revision = asyncio.run(read_current_revision(target.database_url))
    write_termination_message({"schemaRevision": revision or "base"})
    return revision


async def read_current_revision(database_url: str) -> str | None:
    connection = await asyncpg.connect(database_url)
    try:
        return await current_revision(connection)
    finally:
        await connection.close()


async def current_revision(connection: asyncpg.Connection | asyncpg.Pool) -> str | None:
    """The applied Alembic revision, or None for an empty database."""
    exists = await connection.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not exists:
        return None
    revision: str | None = await connection.fetchval("SELECT version_num FROM alembic_version")
    return revision


def write_termination_message(message: dict[str, str], path: Path = TERMINATION_LOG) -> None:
    """Write the operator's contract line where Kubernetes collects it.

    Only a file the kubelet created counts: outside a Pod nothing is written.
    """
    if path.is_file():
        path.write_text(json.dumps(message) + "\n")
