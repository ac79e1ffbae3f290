"""Each retrieval mode finds the right document; filters and bounds hold."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from ragcorp_service.app.main import create_app
from ragcorp_service.ingestion.postings import merge
from tests.support import postings_corpus
from tests.support.corpus import ingest_all
from tests.support.postgres import PostgresForTests
from tests.support.service_app import ClientFactory, make_settings

QUESTIONS = [
    ("where does photosynthesis take place in plants", "Photosynthesis"),
    ("viscous magma erupting explosively", "Volcanoes"),
    ("how does backpropagation compute gradients", "Neural networks"),
]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
async def test_each_mode_ranks_the_relevant_document_first(client: httpx.AsyncClient, mode: str) -> None:
    ids = await ingest_all(client)
    for question, title in QUESTIONS:
        response = await client.post("/v1/search", json={"query": question, "mode": mode, "top_k": 3})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert results[0]["document_id"] == ids[title], (mode, question, results[0]["title"])
        assert results[0]["title"] == title
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)


async def test_vector_search_finds_meaning_without_shared_words(client: httpx.AsyncClient) -> None:
    ids = await ingest_all(client)
    response = await client.post("/v1/search", json={"query": "mountain that explodes", "mode": "vector", "top_k": 1})
    assert response.json()["results"][0]["document_id"] == ids["Volcanoes"]
    keyword = await client.post("/v1/search", json={"query": "mountain that explodes", "mode": "keyword"})
    assert keyword.json()["results"] == []


async def test_collection_and_metadata_filters_restrict_results(client: httpx.AsyncClient) -> None:
    await ingest_all(client, collection="science")
    await ingest_all(client, collection="archive")
    in_collection = await client.post("/v1/search", json={"query": "lava", "collection": "archive", "top_k": 10})
    assert {r["collection"] for r in in_collection.json()["results"]} == {"archive"}
    for mode in ("hybrid", "vector", "keyword"):
        filtered = await client.post(
            "/v1/search",
            json={"query": "energy and weights", "mode": mode, "filters": {"topic": "computing"}, "top_k": 10},
        )
        results = filtered.json()["results"]
        assert results, mode
        assert {r["title"] for r in results} == {"Neural networks"}


async def test_filtered_vector_search_still_fills_top_k(client: httpx.AsyncClient) -> None:
    documents = [
        {
            "title": f"Note {i}",
            "text": f"Observation {i} about river deltas and sediment.",
            "metadata": {"even": i % 2 == 0},
        }
        for i in range(60)
    ]
    await client.post("/v1/documents/batch", json={"documents": documents})
    response = await client.post(
        "/v1/search", json={"query": "sediment", "mode": "vector", "filters": {"even": True}, "top_k": 30}
    )
    assert len(response.json()["results"]) == 30


async def test_bad_search_requests_are_422(client_for: ClientFactory) -> None:
    client = await client_for(max_top_k=20)
    over = await client.post("/v1/search", json={"query": "x", "top_k": 21})
    assert over.status_code == 422 and "MAX_TOP_K" in over.json()["detail"][0]["msg"]
    assert over.json()["detail"][0]["loc"] == ["body", "top_k"]
    for body in ({"query": ""}, {"query": "x", "top_k": 0}, {"query": "x", "mode": "fuzzy"}, {"q": "x"}):
        assert (await client.post("/v1/search", json=body)).status_code == 422, body


async def test_keyword_search_ignores_query_syntax(client: httpx.AsyncClient) -> None:
    await ingest_all(client)
    response = await client.post("/v1/search", json={"query": '"lava" -ash OR (!!) & |', "mode": "keyword"})
    assert response.status_code == 200
    assert response.json()["results"][0]["title"] == "Volcanoes"
    empty = await client.post("/v1/search", json={"query": "!!! ???", "mode": "keyword"})
    assert empty.json()["results"] == []


@pytest.mark.parametrize("pool_size", [1, 2])
async def test_concurrent_hybrid_searches_share_a_small_pool(client_for: ClientFactory, pool_size: int) -> None:
    """Hybrid runs its two lists on two connections at once; a burst of them must not wedge the pool."""
    client = await client_for(db_pool_min_size=1, db_pool_max_size=pool_size)
    await ingest_all(client)
    body = {"query": "lava flows and magma", "mode": "hybrid", "top_k": 3}
    responses = await asyncio.wait_for(asyncio.gather(*(client.post("/v1/search", json=body) for _ in range(12))), 60)
    assert {r.status_code for r in responses} == {200}
    assert {r.json()["results"][0]["title"] for r in responses} == {"Volcanoes"}


async def test_searches_read_from_database_read_url(
    client_for: ClientFactory, postgres: PostgresForTests, template_database: str
) -> None:
    """Writes go to DATABASE_URL, searches to DATABASE_READ_URL (here a separate, empty copy, so it shows)."""
    replica = postgres.create_database(template=template_database)
    try:
        client = await client_for(database_read_url=postgres.url(replica))
        await ingest_all(client)
        assert (await client.get("/v1/documents")).json()["total"] == 3
        for mode in ("hybrid", "vector", "keyword"):
            response = await client.post("/v1/search", json={"query": "lava", "mode": mode})
            assert response.status_code == 200 and response.json()["results"] == [], mode
        health = (await client.get("/healthz")).json()
        assert health["checks"]["database_read"]["status"] == "ok"
    finally:
        postgres.drop_database(replica)


@pytest.mark.parametrize("cache_mb", [128, 0])
async def test_a_replica_starts_with_the_common_words_in_memory(database_url: str, cache_mb: int) -> None:
    """A new replica (a rollout's new colour) warms its keyword cache from the stored corpus, and serves."""
    await postings_corpus.store(database_url, postings_corpus.documents(np.random.default_rng(5), 40, (20, 60)))
    connection = await asyncpg.connect(database_url)
    try:
        await merge(connection)
    finally:
        await connection.close()
    app = create_app(make_settings(database_url, keyword_cache_mb=cache_mb))
    async with LifespanManager(app, startup_timeout=120):
        state = app.state.ragcorp
        if cache_mb == 0:
            assert state.cache_warming is None and state.reader.block_cache is None
            return
        await asyncio.wait_for(state.cache_warming, 30)
        assert state.reader.block_cache.used > 0
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            response = await http.post("/v1/search", json={"query": "term000 term001", "mode": "keyword", "top_k": 10})
        assert response.status_code == 200 and len(response.json()["results"]) == 10
