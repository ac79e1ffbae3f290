"""Refusing to serve a database the service cannot use.

Two mistakes are common and silent otherwise: pointing a new version at a
database nobody migrated, and switching the embedder (say, adding a Gemini key)
on a database filled with another model's vectors, whose dimensions or meaning
differ. Both stop the service at start with a message saying how to fix it.
"""

from __future__ import annotations

import asyncpg

from ragcorp_service.db.migrations import current_revision
from ragcorp_service.local_models import LOCAL_MODELS, RETIRED_MODELS


class SchemaMismatch(RuntimeError):
    pass


async def check_schema(connection: asyncpg.Connection, *, embedding_model: str, embedding_dimensions: int) -> str:
    """Return the schema revision, or raise SchemaMismatch with the fix."""
    revision = await current_revision(connection)
    if revision is None:
        raise SchemaMismatch(
            "the database has no RagCorp schema yet; run `ragcorp-service db upgrade` "
            "(or start with `ragcorp-service serve --migrate`)"
        )
    row = await connection.fetchrow("SELECT model, dimensions FROM embedding_config")
    if row is None:
        raise SchemaMismatch("the database records no embedding model; re-run `ragcorp-service db upgrade`")
    if row["model"] in RETIRED_MODELS and embedding_model in LOCAL_MODELS:
        raise SchemaMismatch(
            f"the database holds {row['model']} embeddings, made by an export recipe this version no longer "
            f"builds (it makes {embedding_model}, whose vectors differ slightly); point DATABASE_URL / "
            "RAGCORP_DATA_DIR at a new database and ingest again, or keep serving it with the earlier version"
        )
    if (row["model"], row["dimensions"]) != (embedding_model, embedding_dimensions):
        raise SchemaMismatch(
            f"the database holds {row['model']} embeddings ({row['dimensions']} dimensions) but the service "
            f"is configured for {embedding_model} ({embedding_dimensions} dimensions). Configure the same "
            f"embedder (EMBEDDING_MODEL={row['model']}, EMBEDDING_DIMENSIONS={row['dimensions']}, and "
            "GOOGLE_API_KEY set or unset to match), or point DATABASE_URL / RAGCORP_DATA_DIR at a new "
            "database and ingest again"
        )
    return revision


async def verify_database(database_url: str, *, embedding_model: str, embedding_dimensions: int) -> str:
    """Connect once and check the schema: what the service needs before it serves (see check_schema)."""
    connection = await asyncpg.connect(database_url)
    try:
        return await check_schema(
            connection, embedding_model=embedding_model, embedding_dimensions=embedding_dimensions
        )
    finally:
        await connection.close()
