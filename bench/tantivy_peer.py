"""A yardstick in the same run: the same chunks and queries in Tantivy, a Lucene-class engine with
compressed posting blocks and block-max WAND (what ParadeDB's pg_search puts inside PostgreSQL),
beside our keyword ranking, one query at a time from one client.

Not a dependency: the index lives in this process's memory for the measurement only. Both sides
stem English words (Tantivy's `en_stem`, PostgreSQL's `english` configuration) and rank the top 10
by BM25 over the same texts; ours is timed as the service runs it (`keyword_ranking`, database
only, the query already parsed by PostgreSQL), and again without the rows' text (like for like:
Tantivy's hits are scores and document addresses), Tantivy's as `searcher.search` in-process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from bench.service import service_block_cache
from bench.stats import Latency
from ragcorp_service.retrieval.keyword import keyword_ranking
from ragcorp_service.retrieval.search import SearchRequest

_WORD = re.compile(r"\w+")
BATCH = 10_000


async def compare(database_url: str, queries: Sequence[str], top_k: int = 10) -> dict[str, Any]:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True)
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    index = tantivy.Index(builder.build())
    writer = index.writer(heap_size=500_000_000, num_threads=1)
    connection = await asyncpg.connect(database_url)
    try:
        started, count, last = time.perf_counter(), 0, 0
        while True:  # keyset pages: a million texts never sit in memory at once
            rows = await connection.fetch("SELECT id, text FROM chunks WHERE id > $1 ORDER BY id LIMIT $2", last, BATCH)
            if not rows:
                break
            for row in rows:
                writer.add_document(tantivy.Document(id=row["id"], text=row["text"]))
            count, last = count + len(rows), rows[-1]["id"]
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        build_seconds = time.perf_counter() - started
        searcher = index.searcher()
        theirs, ours, ranking_only, overlap = [], [], [], 0
        cache, _ = await service_block_cache(database_url)  # ours as the service runs it
        for query in queries:
            words = " ".join(_WORD.findall(query))
            if not words:
                continue
            began = time.perf_counter()
            hits = searcher.search(index.parse_query(words, ["text"]), top_k).hits
            theirs.append(time.perf_counter() - began)
            began = time.perf_counter()
            request = SearchRequest(query=query, top_k=top_k, mode="keyword")
            ranked = await keyword_ranking(connection, request, top_k, cache=cache)
            ours.append(time.perf_counter() - began)
            their_ids = {searcher.doc(address)["id"][0] for _, address in hits}
            overlap += len(their_ids & {chunk.chunk_id for chunk in ranked.chunks})
        # Like for like (Tantivy's hits are scores and addresses, no text), in a pass of its own from a
        # cache warmed afresh: right after the same query it would find every list in memory.
        cache, _ = await service_block_cache(database_url)
        for query in queries:
            if _WORD.search(query):
                began = time.perf_counter()
                request = SearchRequest(query=query, top_k=top_k, mode="keyword")
                await keyword_ranking(connection, request, top_k, cache=cache, with_rows=False)
                ranking_only.append(time.perf_counter() - began)
    finally:
        await connection.close()
    tantivy_latency, our_latency = Latency.of(theirs, sum(theirs)), Latency.of(ours, sum(ours))
    our_ranking = Latency.of(ranking_only, sum(ranking_only))
    return {
        "chunks": count,
        "queries": len(ours),
        "tantivy_build_seconds": round(build_seconds, 1),
        "tantivy": tantivy_latency.__dict__,
        "ours": our_latency.__dict__,
        "p95_ratio": round(our_latency.p95_ms / max(tantivy_latency.p95_ms, 1e-3), 1),
        "ours_ranking_only": our_ranking.__dict__,
        "p95_ratio_ranking_only": round(our_ranking.p95_ms / max(tantivy_latency.p95_ms, 1e-3), 1),
        # Not a quality measure: the two tokenise and score slightly differently (stemmers, BM25's
        # defaults); it says the yardstick ranks the same kind of thing.
        "top10_overlap": round(overlap / max(len(ours) * top_k, 1), 2),
    }


def row(label: str, result: dict[str, Any]) -> tuple[str, str]:
    ours, theirs = result["ours"], result["tantivy"]
    return (
        f"{label}: keyword top 10, ours vs Tantivy (same chunks and queries, one client), {result['chunks']:,} chunks",
        f"p50/p95 {ours['p50_ms']}/{ours['p95_ms']} ms vs {theirs['p50_ms']}/{theirs['p95_ms']} ms: "
        f"{result['p95_ratio']}x at p95; top-10 overlap {result['top10_overlap']}"
        + (
            f"; ours ranking only (no rows, as Tantivy's hits) p95 {result['ours_ranking_only']['p95_ms']} ms: "
            f"{result['p95_ratio_ranking_only']}x"
            if "ours_ranking_only" in result
            else ""
        ),
    )
