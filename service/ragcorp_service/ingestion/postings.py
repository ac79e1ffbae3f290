"""When recent postings move into blocks: the service merges once the tail has grown.

New postings land in `chunk_terms` (the tail) and deleted or retitled chunks leave
tombstones; a query reads the tail whole and masks tombstoned postings, so both
cost every query a little more as they grow. `merge_postings()` (migration 0005)
moves the tail into blocks and drops tombstoned postings in one transaction,
rewriting only the blocks the changes fall in; writers wait for it meanwhile. It
runs after a write that leaves the tail at `POSTINGS_MERGE_AT` postings or more
(or a fiftieth as many tombstones). Only one merge runs at a time across replicas;
a write that finds one running leaves the work to it.
"""

from __future__ import annotations

import asyncpg

DEFAULT_MERGE_AT = 20_000  # POSTINGS_MERGE_AT
MERGE_LOCK = 0x7261_6763_6F72_7001  # pg advisory lock key: "ragcorp" 1
_DUE_SQL = """
    SELECT (SELECT count(*) FROM (SELECT FROM chunk_terms LIMIT $1) tail) >= $1
        OR (SELECT count(*) FROM (SELECT FROM posting_tombstones LIMIT $2) dead) >= $2
"""


async def merge(connection: asyncpg.Connection) -> int | None:
    """Merge now, unless another merge is running (None); the postings moved."""
    async with connection.transaction():
        moved = await connection.fetchval(
            "SELECT CASE WHEN pg_try_advisory_xact_lock($1) THEN merge_postings() END", MERGE_LOCK
        )
    return None if moved is None else int(moved)


async def merge_if_due(pool: asyncpg.Pool, merge_at: int) -> int | None:
    """Merge when the tail holds `merge_at` postings or more; the postings moved, or None."""
    async with pool.acquire() as connection:
        if not await connection.fetchval(_DUE_SQL, merge_at, max(1, merge_at // 50)):
            return None
        return await merge(connection)
