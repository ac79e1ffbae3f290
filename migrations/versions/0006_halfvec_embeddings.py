"""Embeddings stored as half-precision vectors (pgvector's `halfvec`), indexed by HNSW as such.

Half the bytes a vector: 776 instead of 1,544 for 384 dimensions, in the table and
in the HNSW graph, so a million chunks' vectors and their index take about half
the memory and disk, and a chunk row is short enough to stay inline (an exact,
filtered vector search reads it without a TOAST lookup). SciFact's nDCG@10 holds
(docs/benchmarks.md): float16 keeps 11 bits of mantissa, and a unit vector's
components are far from its range limits.

Nothing in the service changes: it sends `vector`s, which PostgreSQL casts to
`halfvec` on insert and on comparison (an implicit cast), so a release from before
this migration keeps working against it during a blue/green rollout, and the
downgrade's `vector` column takes this release's writes the same way.

The column rewrite and the index build hold the chunks table exclusively: minutes
at a million chunks (docs/operations.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What the index build gets in the server (pgvector: a graph built in memory builds many times faster).
BUILD_MEMORY = "1GB"


def _store_as(kind: str, opclass: str) -> None:
    dimensions = int(op.get_bind().execute(sa.text("SELECT dimensions FROM embedding_config")).scalar_one())
    op.execute("DROP INDEX chunks_embedding_hnsw_idx")
    op.execute(
        f"ALTER TABLE chunks ALTER COLUMN embedding TYPE {kind}({dimensions}) USING embedding::{kind}({dimensions})"
    )
    op.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
    op.execute(f"CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding {opclass})")


def upgrade() -> None:
    _store_as("halfvec", "halfvec_cosine_ops")


def downgrade() -> None:
    _store_as("vector", "vector_cosine_ops")
