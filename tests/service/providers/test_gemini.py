"""The Gemini provider, through the real google-genai client, against a fake Gemini on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ragcorp_service.db import migrations
from tests.support.corpus import ingest_all
from tests.support.fake_gemini import FakeGemini, running_fake_gemini
from tests.support.postgres import PostgresForTests
from tests.support.service_app import ClientFactory, make_settings


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    with running_fake_gemini() as fake:
        yield fake


@pytest.fixture
def gemini_settings(fake_gemini: FakeGemini) -> dict[str, Any]:
    return {
        "google_api_key": "test-gemini-key",
        "gemini_base_url": fake_gemini.url,
        "gemini_retry_initial_delay_seconds": 0.01,
        "embedding_dimensions": 64,
    }


@pytest.fixture
def gemini_database_url(postgres: PostgresForTests, gemini_settings: dict[str, Any]) -> Iterator[str]:
    """A database migrated for the Gemini embedder's dimensions."""
    name = postgres.create_database()
    url = postgres.url(name)
    migrations.upgrade(migrations.target_for(make_settings(url, **gemini_settings)))
    yield url
    postgres.drop_database(name)


@pytest.fixture
async def gemini_client(
    client_for: ClientFactory, gemini_database_url: str, gemini_settings: dict[str, Any]
) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(database_url=gemini_database_url, **gemini_settings)
    return client


async def test_ingest_search_and_ask_go_through_gemini(
    gemini_client: httpx.AsyncClient, fake_gemini: FakeGemini
) -> None:
    ids = await ingest_all(gemini_client)
    assert any(path.endswith(":batchEmbedContents") for _, path in fake_gemini.requests)
    hits = (await gemini_client.post("/v1/search", json={"query": "lava crust volcano", "mode": "vector"})).json()
    assert hits["results"][0]["document_id"] == ids["Volcanoes"]
    answer = (await gemini_client.post("/v1/ask", json={"question": "What is a volcano?"})).json()
    assert answer["generator"] == "gemini:gemini-2.5-flash"
    assert answer["answer"] == fake_gemini.answer
    assert [c["number"] for c in answer["citations"]] == [1]
    assert any(path.endswith("/models/gemini-2.5-flash:streamGenerateContent") for _, path in fake_gemini.requests)
    version = (await gemini_client.get("/version")).json()
    assert (version["embedding_model"], version["embedding_dimensions"]) == ("gemini-embedding-001", 64)


async def test_transient_errors_are_retried_with_backoff(
    gemini_client: httpx.AsyncClient, fake_gemini: FakeGemini
) -> None:
    fake_gemini.fail_next(429, 503)
    response = await gemini_client.post("/v1/documents", json={"title": "Tides", "text": "The moon raises tides."})
    assert response.status_code == 201
    embeds = [path for _, path in fake_gemini.requests if path.endswith(":batchEmbedContents")]
    assert len(embeds) == 3  # two failures, then success


async def test_streamed_gemini_answer_arrives_in_pieces(gemini_client: httpx.AsyncClient) -> None:
    await ingest_all(gemini_client)
    async with gemini_client.stream("POST", "/v1/ask", json={"question": "volcano?", "stream": True}) as response:
        raw = "".join([part async for part in response.aiter_text()])
    assert raw.count("event: token") == len(FakeGemini.answer.split(" "))
    assert "event: citations" in raw and "event: done" in raw


async def test_readiness_reports_gemini_down_while_liveness_stays_up(
    gemini_client: httpx.AsyncClient, fake_gemini: FakeGemini
) -> None:
    ready = await gemini_client.get("/healthz", params={"full": "true"})
    assert ready.status_code == 200 and ready.json()["checks"]["generator"]["status"] == "ok"
    fake_gemini.fail_next(500)
    down = await gemini_client.get("/healthz", params={"full": "true"})
    assert down.status_code == 503
    assert down.json()["checks"]["generator"]["status"] == "unavailable"
    fake_gemini.fail_next(500)
    assert (await gemini_client.get("/healthz")).status_code == 200


async def test_a_gemini_outage_answers_503_for_what_needs_it_and_leaves_the_pod_ready(
    gemini_client: httpx.AsyncClient, fake_gemini: FakeGemini
) -> None:
    """After the SDK's retries, a Gemini that keeps failing is a 503 with Retry-After (not a 500),
    streamed or not, and readiness and liveness stay up: the Pod keeps serving what it can."""
    await ingest_all(gemini_client)
    for stream in (False, True):
        fake_gemini.fail_next(*[503] * 20)
        response = await gemini_client.post("/v1/ask", json={"question": "volcano?", "stream": stream})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "30" and "unavailable" in response.json()["detail"]
        fake_gemini.failures.clear()
    fake_gemini.fail_next(*[503] * 20)
    assert (await gemini_client.get("/healthz")).status_code == 200
    assert (await gemini_client.get("/livez")).status_code == 200
    fake_gemini.failures.clear()
    assert (await gemini_client.post("/v1/ask", json={"question": "volcano?"})).status_code == 200
