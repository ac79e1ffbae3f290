"""Documents, their embedded chunks, and the embedder the vectors came from.

The vector column's dimension is fixed here from the configured embedder and
recorded in `embedding_config`, so a service started later with another embedder
can refuse with a clear message instead of failing on its first insert.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    attributes = op.get_context().config.attributes  # type: ignore[union-attr]
    model = str(attributes["embedding_model"])
    dimensions = int(attributes["embedding_dimensions"])

    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        """
        CREATE TABLE embedding_config (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            model text NOT NULL,
            dimensions integer NOT NULL CHECK (dimensions > 0),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.get_bind().execute(
        sa.text("INSERT INTO embedding_config (model, dimensions) VALUES (:model, :dimensions)"),
        {"model": model, "dimensions": dimensions},
    )
    op.execute(
        """
        CREATE TABLE documents (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            collection text NOT NULL,
            title text NOT NULL,
            source text,
            content_sha256 text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            chunk_count integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT documents_collection_sha256_key UNIQUE (collection, content_sha256)
        )
        """
    )
    op.execute("CREATE INDEX documents_created_at_idx ON documents (created_at DESC, id)")
    op.execute("CREATE INDEX documents_metadata_idx ON documents USING gin (metadata jsonb_path_ops)")
    op.execute(
        f"""
        CREATE TABLE chunks (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            collection text NOT NULL,
            ordinal integer NOT NULL,
            text text NOT NULL,
            token_count integer NOT NULL,
            tsv tsvector NOT NULL,
            embedding vector({dimensions}) NOT NULL,
            CONSTRAINT chunks_document_ordinal_key UNIQUE (document_id, ordinal)
        )
        """
    )
    op.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
    op.execute("CREATE INDEX chunks_tsv_gin_idx ON chunks USING gin (tsv)")
    op.execute("CREATE INDEX chunks_collection_idx ON chunks (collection)")


def downgrade() -> None:
    # The vector extension stays: other schemas in the database may use it.
    op.execute("DROP TABLE chunks")
    op.execute("DROP TABLE documents")
    op.execute("DROP TABLE embedding_config")
