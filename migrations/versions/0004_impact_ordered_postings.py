"""Impact-ordered postings: BM25 reads the best postings of each term first, and proves when it may stop.

Summing every posting of a query's terms cost about a second at 100k chunks
(common words have tens of thousands). Each posting now carries its BM25 term
weight without the idf (`bm25_weight`, computed against a reference average
chunk length kept in `corpus_stats.reference_avgdl`) and its chunk's length, and
`chunk_terms_impact_idx` lists a term's postings best first. A query reads the
top few hundred postings per term, scores those chunks exactly, and stops when
no unread chunk could outscore the k-th (see `retrieval/keyword.py`).

The primary key moves to (chunk_id, term) with tf and length included, so the
exact scoring of a candidate chunk is one index descent. The GIN index on
`chunks.tsv` has served nothing since the posting list (0003) and only cost
writes; it goes. `bm25_weight` is the one definition of k1 and b that both
writes and queries use.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION bm25_weight(tf integer, chunk_len integer, avgdl float8) RETURNS float8
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN tf * 2.2::float8 / (tf + 1.2::float8 * (0.25::float8 + 0.75::float8 * chunk_len / avgdl))
        """
    )
    op.execute("COMMENT ON FUNCTION bm25_weight IS 'BM25 term weight without idf, k1 = 1.2, b = 0.75'")
    op.execute("ALTER TABLE corpus_stats ADD COLUMN reference_avgdl float8 CHECK (reference_avgdl > 0)")
    op.execute(
        """
        UPDATE corpus_stats SET reference_avgdl = term_total::float8 / chunk_count
        WHERE term_total > 0 AND chunk_count > 0
        """
    )
    op.execute("ALTER TABLE chunk_terms RENAME TO chunk_terms_0003")
    op.execute("ALTER INDEX chunk_terms_pkey RENAME TO chunk_terms_0003_pkey")
    op.execute("DROP INDEX chunk_terms_chunk_idx")
    op.execute(
        """
        CREATE TABLE chunk_terms (
            term text NOT NULL,
            chunk_id bigint NOT NULL,
            tf integer NOT NULL,
            chunk_len integer NOT NULL,
            weight float8 NOT NULL,
            CONSTRAINT chunk_terms_pkey PRIMARY KEY (chunk_id, term) INCLUDE (tf, chunk_len),
            CONSTRAINT chunk_terms_chunk_id_fkey FOREIGN KEY (chunk_id) REFERENCES chunks (id) ON DELETE CASCADE,
            CONSTRAINT chunk_terms_tf_check CHECK (tf > 0),
            CONSTRAINT chunk_terms_chunk_len_check CHECK (chunk_len >= tf),
            CONSTRAINT chunk_terms_weight_check CHECK (weight > 0)
        )
        """
    )
    op.execute(
        """
        INSERT INTO chunk_terms (term, chunk_id, tf, chunk_len, weight)
        SELECT old.term, old.chunk_id, old.tf, c.term_count, bm25_weight(old.tf, c.term_count, s.reference_avgdl)
        FROM chunk_terms_0003 old JOIN chunks c ON c.id = old.chunk_id CROSS JOIN corpus_stats s
        """
    )
    op.execute("DROP TABLE chunk_terms_0003")
    op.execute(
        "CREATE INDEX chunk_terms_impact_idx ON chunk_terms (term, weight DESC) INCLUDE (chunk_id, tf, chunk_len)"
    )
    op.execute("DROP INDEX chunks_tsv_gin_idx")


def downgrade() -> None:
    op.execute("CREATE INDEX chunks_tsv_gin_idx ON chunks USING gin (tsv)")
    op.execute("ALTER TABLE chunk_terms RENAME TO chunk_terms_0004")
    op.execute("ALTER INDEX chunk_terms_pkey RENAME TO chunk_terms_0004_pkey")
    op.execute("DROP INDEX chunk_terms_impact_idx")
    op.execute(
        """
        CREATE TABLE chunk_terms (
            term text NOT NULL,
            chunk_id bigint NOT NULL,
            tf integer NOT NULL,
            CONSTRAINT chunk_terms_pkey PRIMARY KEY (term, chunk_id),
            CONSTRAINT chunk_terms_chunk_id_fkey FOREIGN KEY (chunk_id) REFERENCES chunks (id) ON DELETE CASCADE,
            CONSTRAINT chunk_terms_tf_check CHECK (tf > 0)
        )
        """
    )
    op.execute("INSERT INTO chunk_terms (term, chunk_id, tf) SELECT term, chunk_id, tf FROM chunk_terms_0004")
    op.execute("DROP TABLE chunk_terms_0004")
    op.execute("CREATE INDEX chunk_terms_chunk_idx ON chunk_terms (chunk_id)")
    op.execute("ALTER TABLE corpus_stats DROP COLUMN reference_avgdl")
    op.execute("DROP FUNCTION bm25_weight(integer, integer, float8)")
