"""The posting tail's indexes rebuilt to the size of what the tail holds.

Upgrading to 0005 moved every posting out of `chunk_terms` into blocks, but a
B-tree keeps the pages it grew to: on the bench's million chunks the tail's two
indexes stayed at 1.9 GB (15 GB for a database upgraded at that size) while the
tail holds at most `POSTINGS_MERGE_AT` postings between merges. Rebuilding them
locks the tail for as long as it takes to index what is in it (at most a few
tens of thousands of rows: well under a second); writers and keyword searches,
which read the tail, wait that long.

The downgrade has nothing to undo: the indexes are the same, only smaller.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("REINDEX TABLE chunk_terms")


def downgrade() -> None:
    """Nothing: 0006's indexes on `chunk_terms` are these, whatever their size."""
