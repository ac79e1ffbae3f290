"""Posting blocks: a term's postings in blocks of 128, each with its best weight, instead of a row each.

A row per posting cost about 150 bytes with its two B-trees: three quarters of a
million-chunk database, and a query for a common word read its postings one
index entry at a time. A block holds up to 128 postings of one term in chunk id
order, packed 13 bytes a posting (big-endian): the offset from its first chunk
id (int4), tf - 1 (one byte: a tsvector keeps at most 256 positions of a lexeme),
the chunk's length (int4) and its collection's code (int4, from
`collection_codes`). Its primary-key entry carries
what a query plans with, read without touching the block: its first and last
chunk id, its best `bm25_weight` against the reference it was weighted by, the
collections in it, and the merge that wrote it (`generation`: a query that reads
blocks after planning checks it read the blocks it planned with). A query reads
the blocks' entries, then only the blocks whose bound could still reach its top k
(block-max pruning, `retrieval/keyword.py`).

Writes stay transactional and cheap: new postings land in `chunk_terms` (the
tail, as before), a deleted or retitled chunk's block postings are masked by a
tombstone (`posting_tombstones`, with its terms), and `merge_postings()` moves
the tail into blocks and drops tombstoned postings, rewriting only the blocks
the changes fall in (an ingest of new chunks rewrites each term's last block).
The service calls it when the tail grows past `POSTINGS_MERGE_AT`; this upgrade
calls it once, which moves every posting into blocks.

`live_postings` decodes it all back (blocks less tombstones, plus the tail): the
full BM25 query tests and the bench compare against, and the downgrade's source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK_POSTINGS = 128

_TABLES = """
CREATE SEQUENCE posting_block_generation;
CREATE TABLE collection_codes (
    code integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection text NOT NULL UNIQUE
);
CREATE TABLE posting_blocks (
    term text NOT NULL,
    first_chunk bigint NOT NULL,
    last_chunk bigint NOT NULL,
    postings integer NOT NULL,
    max_weight float8 NOT NULL,
    reference_avgdl float8 NOT NULL,
    codes integer[] NOT NULL,
    generation bigint NOT NULL,
    packed bytea NOT NULL,
    CONSTRAINT posting_blocks_pkey PRIMARY KEY (term, first_chunk)
        INCLUDE (last_chunk, postings, max_weight, reference_avgdl, codes, generation),
    CONSTRAINT posting_blocks_range_check CHECK (last_chunk >= first_chunk),
    CONSTRAINT posting_blocks_postings_check CHECK (postings > 0 AND length(packed) = 13 * postings),
    CONSTRAINT posting_blocks_weight_check CHECK (max_weight > 0 AND reference_avgdl > 0)
);
COMMENT ON TABLE posting_blocks IS 'A term''s postings in chunk id order, up to 128 a row; see migration 0005';
CREATE TABLE posting_tombstones (
    chunk_id bigint PRIMARY KEY,
    terms text[] NOT NULL
);
COMMENT ON TABLE posting_tombstones IS
    'Chunks whose block postings are gone (deleted or retitled) until the next merge';
"""

_DECODING = """
CREATE FUNCTION be_int4(packed bytea, pos integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (get_byte(packed, pos) << 24) | (get_byte(packed, pos + 1) << 16)
       | (get_byte(packed, pos + 2) << 8) | get_byte(packed, pos + 3);

CREATE FUNCTION block_postings(b posting_blocks)
RETURNS TABLE (term text, chunk_id bigint, tf integer, chunk_len integer, code integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT b.term, b.first_chunk + be_int4(b.packed, 13 * i), get_byte(b.packed, 13 * i + 4) + 1,
           be_int4(b.packed, 13 * i + 5), be_int4(b.packed, 13 * i + 9)
    FROM generate_series(0, b.postings - 1) AS i
$$;

CREATE VIEW live_postings AS
    SELECT p.term, p.chunk_id, p.tf, p.chunk_len
    FROM posting_blocks b CROSS JOIN LATERAL block_postings(b) p
    WHERE NOT EXISTS (SELECT 1 FROM posting_tombstones t WHERE t.chunk_id = p.chunk_id)
    UNION ALL
    SELECT term, chunk_id, tf, chunk_len FROM chunk_terms;
"""

# The block a change to (term, chunk) falls in: the term's last block starting at or before the
# chunk, else its first. Blocks never overlap, so each existing posting has one, and a rewritten
# block's postings stay before the next block's. A posting past the term's last block joins it only
# while it is less than half full; else (NULL) it starts new blocks, so appending rewrites each block
# about once and a merge costs about what it moves.
_PLACING = f"""
CREATE FUNCTION posting_block_for(of_term text, chunk bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN b.first_chunk IS NULL THEN (SELECT min(first_chunk) FROM posting_blocks WHERE term = of_term)
        WHEN chunk > b.last_chunk AND b.postings >= {BLOCK_POSTINGS // 2} AND NOT EXISTS (
            SELECT 1 FROM posting_blocks n WHERE n.term = of_term AND n.first_chunk > b.first_chunk) THEN NULL
        ELSE b.first_chunk
    END
    FROM (SELECT) one LEFT JOIN LATERAL (
        SELECT first_chunk, last_chunk, postings FROM posting_blocks
        WHERE term = of_term AND first_chunk <= chunk ORDER BY first_chunk DESC LIMIT 1
    ) b ON true
$$;
"""

_MERGE = f"""
CREATE FUNCTION merge_postings(documents uuid[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    reference float8;
    moved bigint;
    generation bigint := nextval('posting_block_generation');
BEGIN
    -- Writers take ROW EXCLUSIVE on the tail (and touch it before any tombstone), so this waits
    -- for those in flight and holds new ones back: the tail and tombstones read below are final.
    LOCK TABLE chunk_terms IN SHARE ROW EXCLUSIVE MODE;
    -- Any reference will do: each block keeps the one its bound was computed against.
    reference := coalesce((SELECT reference_avgdl FROM corpus_stats), 1);
    INSERT INTO collection_codes (collection)  -- two index-driven halves: an OR made it a scan of every chunk
    SELECT c.collection FROM chunk_terms ct JOIN chunks c ON c.id = ct.chunk_id
    UNION SELECT c.collection FROM chunks c WHERE c.document_id = ANY(documents)
    ORDER BY 1
    ON CONFLICT (collection) DO NOTHING;

    DROP TABLE IF EXISTS pg_temp.merge_new, pg_temp.merge_tail, pg_temp.merge_dead, pg_temp.merge_postings;
    -- New postings: the tail's, and those of `documents` (stored without a tail by a bulk import).
    CREATE TEMP TABLE merge_new (term text, chunk_id bigint, tf integer, chunk_len integer, code integer)
        ON COMMIT DROP;
    WITH tail AS (DELETE FROM chunk_terms RETURNING term, chunk_id, tf, chunk_len)
    INSERT INTO merge_new
    SELECT tail.term, tail.chunk_id, tail.tf, tail.chunk_len, cc.code
    FROM tail JOIN chunks c ON c.id = tail.chunk_id JOIN collection_codes cc ON cc.collection = c.collection;
    INSERT INTO merge_new
    SELECT u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1), c.term_count, cc.code
    FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) u JOIN collection_codes cc ON cc.collection = c.collection
    WHERE c.document_id = ANY(documents);
    moved := (SELECT count(*) FROM merge_new);

    -- Each under the block it falls in. A term whose new postings all come after its last block
    -- (new chunks: the usual case) is placed once for all of them; others posting by posting.
    CREATE TEMP TABLE merge_tail ON COMMIT DROP AS
    WITH span AS (
        SELECT term, min(chunk_id) AS low FROM merge_new GROUP BY term
    ), last AS (
        SELECT span.term, span.low, b.first_chunk, b.last_chunk, b.postings
        FROM span LEFT JOIN LATERAL (
            SELECT first_chunk, last_chunk, postings FROM posting_blocks
            WHERE term = span.term ORDER BY first_chunk DESC LIMIT 1
        ) b ON true
    )
    SELECT n.term,
           CASE WHEN last.first_chunk IS NULL THEN NULL
                WHEN last.low > last.last_chunk THEN
                    CASE WHEN last.postings < {BLOCK_POSTINGS // 2} THEN last.first_chunk END
                ELSE posting_block_for(n.term, n.chunk_id) END AS block,
           n.chunk_id, n.tf, n.chunk_len, n.code
    FROM merge_new n JOIN last USING (term);

    CREATE TEMP TABLE merge_dead (term text, block bigint, chunk_id bigint) ON COMMIT DROP;
    WITH dead AS (DELETE FROM posting_tombstones RETURNING chunk_id, terms)
    INSERT INTO merge_dead
    SELECT t.term, posting_block_for(t.term, dead.chunk_id), dead.chunk_id
    FROM dead CROSS JOIN LATERAL unnest(dead.terms) AS t(term);

    -- The touched blocks' postings less the dead, and the tail's, each under the block it falls in
    -- (NULL: new blocks after the term's last).
    CREATE TEMP TABLE merge_postings (term text, block bigint, chunk_id bigint, tf integer, chunk_len integer,
                                      code integer) ON COMMIT DROP;
    WITH touched AS (
        SELECT term, block FROM merge_tail WHERE block IS NOT NULL
        UNION SELECT term, block FROM merge_dead WHERE block IS NOT NULL
    ), removed AS (
        DELETE FROM posting_blocks b USING touched
        WHERE b.term = touched.term AND b.first_chunk = touched.block RETURNING b.*
    )
    INSERT INTO merge_postings
    SELECT p.term, removed.first_chunk, p.chunk_id, p.tf, p.chunk_len, p.code
    FROM removed CROSS JOIN LATERAL block_postings(removed) p
    WHERE NOT EXISTS (SELECT 1 FROM merge_dead d WHERE d.chunk_id = p.chunk_id);
    INSERT INTO merge_postings SELECT * FROM merge_tail;

    INSERT INTO posting_blocks (term, first_chunk, last_chunk, postings, max_weight, reference_avgdl, codes,
                                generation, packed)
    SELECT term, min(chunk_id), max(chunk_id), count(*), max(bm25_weight(tf, chunk_len, reference)), reference,
           array_agg(DISTINCT code ORDER BY code), generation,
           string_agg(int4send((chunk_id - first_chunk)::integer) || set_byte('\\x00'::bytea, 0, tf - 1)
                      || int4send(chunk_len) || int4send(code), ''::bytea ORDER BY chunk_id)
    FROM (
        SELECT *, min(chunk_id) OVER (PARTITION BY term, block, part) AS first_chunk
        FROM (SELECT *, (row_number() OVER (PARTITION BY term, block ORDER BY chunk_id) - 1) / {BLOCK_POSTINGS} AS part
              FROM merge_postings) numbered
    ) parted
    GROUP BY term, block, part;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION merge_postings IS
    'Moves the tail (chunk_terms) and the postings of the documents given into posting blocks, '
    'applies tombstones; returns the postings moved';
"""


def _statements(script: str) -> list[str]:
    """A script's statements one by one (the driver runs one per call); `;` ends one only at a line's end
    outside a function body."""
    statements, current, in_body = [], [], False
    for line in script.strip().splitlines():
        current.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if line.rstrip().endswith(";") and not in_body:
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    return statements


def upgrade() -> None:
    for statement in _statements(_TABLES + _DECODING + _PLACING + _MERGE):
        op.execute(statement)
    op.execute("SELECT merge_postings()")


def downgrade() -> None:
    # Every live posting back into the tail, weighted against the corpus's reference as 0004 kept them.
    op.execute(
        """
        INSERT INTO chunk_terms (term, chunk_id, tf, chunk_len, weight)
        SELECT p.term, p.chunk_id, p.tf, p.chunk_len, bm25_weight(p.tf, p.chunk_len, s.reference_avgdl)
        FROM posting_blocks b CROSS JOIN LATERAL block_postings(b) p CROSS JOIN corpus_stats s
        WHERE NOT EXISTS (SELECT 1 FROM posting_tombstones t WHERE t.chunk_id = p.chunk_id)
        """
    )
    op.execute("DROP FUNCTION merge_postings(uuid[])")
    op.execute("DROP FUNCTION posting_block_for(text, bigint)")
    op.execute("DROP VIEW live_postings")
    op.execute("DROP FUNCTION block_postings(posting_blocks)")
    op.execute("DROP FUNCTION be_int4(bytea, integer)")
    op.execute("DROP TABLE posting_tombstones")
    op.execute("DROP TABLE posting_blocks")
    op.execute("DROP TABLE collection_codes")
    op.execute("DROP SEQUENCE posting_block_generation")
