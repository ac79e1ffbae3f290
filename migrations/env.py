"""Alembic's entry point: connect, take the migration lock, run the scripts.

The lock is a PostgreSQL advisory lock held for the whole run, so two migration
Jobs (or a Job and a developer) wait for each other instead of both applying
the same DDL. The URL comes from the configuration attributes that
`ragcorp_service.db.migrations` sets, else from the environment.
"""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ragcorp_service.db.migrations import MIGRATION_LOCK_KEY, resolve_migration_target

config = context.config
target = resolve_migration_target(config.attributes)


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=None,
            transaction_per_migration=True,
        )
        context.config.attributes["embedding_model"] = target.embedding_model
        context.config.attributes["embedding_dimensions"] = target.embedding_dimensions
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


async def _run_online() -> None:
    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(target.database_url)

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
asyncio.run(_run_online())
