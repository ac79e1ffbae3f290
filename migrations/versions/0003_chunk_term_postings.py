"""A posting list (term, chunk, term frequency) so BM25 reads only the query's terms.

Computing term frequencies by unnesting every matching chunk's tsvector made a
keyword query cost in proportion to the text of all chunks sharing any query
word (about a second at 11k chunks for common words). With postings indexed by
term, a query reads just its terms' postings. Upgrading backfills them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE chunk_terms (
            term text NOT NULL,
            chunk_id bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
            tf integer NOT NULL CHECK (tf > 0),
            PRIMARY KEY (term, chunk_id)
        )
        """
    )
    op.execute(
        """
        INSERT INTO chunk_terms (term, chunk_id, tf)
        SELECT u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1) FROM chunks c, unnest(c.tsv) u
        """
    )
    op.execute("CREATE INDEX chunk_terms_chunk_idx ON chunk_terms (chunk_id)")


def downgrade() -> None:
    op.execute("DROP TABLE chunk_terms")
