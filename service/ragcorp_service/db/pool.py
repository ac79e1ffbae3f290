"""The asyncpg connection pool, with pgvector's codec on every connection."""

from __future__ import annotations

from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from ragcorp_service.settings import Settings


class DatabaseUnavailable(ConnectionError):
    """No connection could be opened: the server is down, full, or refusing this database.

    Whatever PostgreSQL said, a client can only wait and retry, so every failure to
    connect becomes this one type (and an HTTP 503).
    """


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(*args, **kwargs)
    except asyncpg.PostgresError as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc


async def _init_connection(connection: asyncpg.Connection) -> None:
    await register_vector(connection)


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        connect=_connect,
        init=_init_connection,
        command_timeout=settings.db_statement_timeout_ms / 1000,
        server_settings={"statement_timeout": str(settings.db_statement_timeout_ms)},
    )
    assert pool is not None
    return pool
